import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { ImageManifest } from '../../../src/shared/protocol/image';
import { ImageCatalog } from './catalog';

let stateDir: string;
let catalog: ImageCatalog;

beforeEach(() => {
  stateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'firedeck-catalog-'));
  catalog = new ImageCatalog(stateDir);
});
afterEach(() => {
  fs.rmSync(stateDir, { recursive: true, force: true });
});

function publish(name: string, version: string, builtAt: string, firecrackerKernel: string | null = null): void {
  const dir = path.join(catalog.imageDir(name), version);
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'rootfs.ext4'), '');
  fs.truncateSync(path.join(dir, 'rootfs.ext4'), 1 << 20);
  fs.writeFileSync(path.join(dir, 'vmlinuz'), 'k');
  fs.writeFileSync(path.join(dir, 'initrd.img'), 'i');
  const manifest: ImageManifest = {
    name,
    version,
    recipeHash: 'a'.repeat(64),
    builderVersion: 1,
    suite: 'bookworm',
    builtAt,
    buildSeconds: 1,
    kernel: {
      release: '6.1.0-1-amd64',
      package: 'linux-image-6.1.0-1-amd64',
      packageVersion: '6.1',
      file: 'vmlinuz',
      initrd: 'initrd.img',
      firecrackerKernel,
    },
    rootfs: { file: 'rootfs.ext4', sizeBytes: 1 << 20, sha256: 'b'.repeat(64) },
    packages: [],
    npmGlobals: [],
    readiness: ['vm'],
    bootTest: null,
  };
  fs.writeFileSync(path.join(dir, 'manifest.json'), JSON.stringify(manifest));
}

describe('ImageCatalog', () => {
  it('has no current version before a promote, and says how to build one', () => {
    publish('cli', 'v1', '2026-01-01T00:00:00Z');
    expect(() => catalog.resolve('cli')).toThrow(/no current version/);
    expect(() => catalog.resolve('nothing')).toThrow(/no current version/);
  });

  it('resolves name and name@version to absolute file paths', () => {
    publish('cli', 'v1', '2026-01-01T00:00:00Z');
    catalog.promote('cli', 'v1');
    const img = catalog.resolve('cli');
    expect(img.version).toBe('v1');
    expect(img.rootfsPath).toBe(path.join(stateDir, 'images', 'cli', 'v1', 'rootfs.ext4'));
    expect(img.kernelPath).toBe(path.join(stateDir, 'images', 'cli', 'v1', 'vmlinuz'));
    expect(img.initrdPath).toBe(path.join(stateDir, 'images', 'cli', 'v1', 'initrd.img'));
    expect(catalog.resolve('cli@v1').manifest.readiness).toEqual(['vm']);
    expect(() => catalog.resolve('cli@v2')).toThrow(/cli@v2 is not in the catalog/);
    expect(() => catalog.resolve('../etc')).toThrow(/not an image reference/);
    expect(() => catalog.resolve('cli@../../x')).toThrow(/not an image reference/);
  });

  it('resolves the Firecracker kernel only when the version was built with one', () => {
    publish('cli', 'v1', '2026-01-01T00:00:00Z');
    publish('cli', 'v2', '2026-01-02T00:00:00Z', 'vmlinux');
    expect(catalog.resolve('cli@v1').firecrackerKernelPath).toBeNull();
    expect(catalog.resolve('cli@v2').firecrackerKernelPath).toBe(path.join(stateDir, 'images', 'cli', 'v2', 'vmlinux'));
  });

  it('ignores staging dirs and versions without a valid manifest', () => {
    publish('cli', 'v1', '2026-01-01T00:00:00Z');
    fs.mkdirSync(path.join(catalog.imageDir('cli'), '.staging-v2-x'));
    fs.mkdirSync(path.join(catalog.imageDir('cli'), 'v3'));
    fs.writeFileSync(path.join(catalog.imageDir('cli'), 'v3', 'manifest.json'), '{"name":"cli"}');
    expect(catalog.versions('cli').map((m) => m.version)).toEqual(['v1']);
  });

  it('promotes, rolls back to the previous build, and lists with the current flag', () => {
    publish('cli', 'v1', '2026-01-01T00:00:00Z');
    publish('cli', 'v2', '2026-01-02T00:00:00Z');
    catalog.promote('cli', 'v2');
    expect(catalog.list('cli').map((v) => [v.version, v.current])).toEqual([
      ['v1', false],
      ['v2', true],
    ]);
    expect(catalog.rollback('cli').version).toBe('v1');
    expect(catalog.currentVersion('cli')).toBe('v1');
    expect(() => catalog.rollback('cli')).toThrow(/no version older/);
    expect(catalog.list().every((v) => v.diskBytes >= 0 && v.rootfsBytes === 1 << 20)).toBe(true);
  });

  it('gc keeps the current version, the newest others and those in use', () => {
    for (let i = 1; i <= 5; i++) publish('cli', `v${i}`, `2026-01-0${i}T00:00:00Z`);
    catalog.promote('cli', 'v2');
    const result = catalog.gc({ name: 'cli', keep: 1, inUse: new Set(['cli@v1']) });
    expect(result.removed.sort()).toEqual(['cli@v3', 'cli@v4']);
    expect(catalog.versions('cli').map((m) => m.version)).toEqual(['v1', 'v2', 'v5']);
    expect(catalog.resolve('cli').version).toBe('v2');
    expect(fs.readdirSync(catalog.imageDir('cli')).filter((n) => n.startsWith('.'))).toEqual([]);
  });

  it('imports a built image dir sparsely and makes it current', async () => {
    publish('src', 'v9', '2026-01-01T00:00:00Z');
    const manifestPath = path.join(catalog.imageDir('src'), 'v9', 'manifest.json');
    const m = JSON.parse(fs.readFileSync(manifestPath, 'utf8')) as ImageManifest;
    fs.writeFileSync(manifestPath, JSON.stringify({ ...m, name: 'test' }));
    const img = await catalog.importVersion('test', path.join(catalog.imageDir('src'), 'v9'));
    expect(img.version).toBe('v9');
    expect(catalog.resolve('test').rootfsPath).toBe(img.rootfsPath);
    expect(fs.statSync(img.rootfsPath).size).toBe(1 << 20);
    expect(fs.statSync(img.rootfsPath).blocks * 512).toBeLessThan(1 << 20);
  });
});
