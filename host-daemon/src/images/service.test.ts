import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FiredeckError } from '../../../src/shared/errors';
import type { DaemonEvent } from '../../../src/shared/protocol/events';
import { IMAGE_BUILD_LOG_TAIL, type ImageManifest } from '../../../src/shared/protocol/image';
import type { BuildOptions, BuiltImage } from './builder';
import { ImageCatalog } from './catalog';
import { ImageService } from './service';

// The repo's own recipes: the service loads and hashes `test` as the daemon would.
const recipesDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../images');

let stateDir: string;
let catalog: ImageCatalog;
let events: DaemonEvent[];

beforeEach(() => {
  stateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'firedeck-imgsvc-'));
  catalog = new ImageCatalog(stateDir);
  events = [];
});
afterEach(() => {
  fs.rmSync(stateDir, { recursive: true, force: true });
});

function manifestOf(name: string, version: string, builtAt: string): ImageManifest {
  return {
    name,
    version,
    recipeHash: 'c'.repeat(64),
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
      firecrackerKernel: null,
    },
    rootfs: { file: 'rootfs.ext4', sizeBytes: 1 << 20, sha256: 'd'.repeat(64) },
    packages: [{ name: 'systemd', version: '252' }],
    npmGlobals: [],
    readiness: ['vm'],
    bootTest: { seconds: 21, markers: ['vm'] },
  };
}

/** Publishes a version dir as the builder would (its files and manifest, one rename). */
function publish(parent: string, manifest: ImageManifest): BuiltImage {
  const staging = path.join(parent, `.staging-${manifest.version}`);
  fs.mkdirSync(staging, { recursive: true });
  for (const f of ['rootfs.ext4', 'vmlinuz', 'initrd.img']) fs.writeFileSync(path.join(staging, f), f);
  fs.writeFileSync(path.join(staging, 'manifest.json'), JSON.stringify(manifest));
  const dir = path.join(parent, manifest.version);
  fs.renameSync(staging, dir);
  return {
    dir,
    kernelPath: path.join(dir, 'vmlinuz'),
    initrdPath: path.join(dir, 'initrd.img'),
    rootfsPath: path.join(dir, 'rootfs.ext4'),
    manifest,
  };
}

/**
 * A builder that needs no root: it reports steps and lines, then waits until the test lets it publish (or
 * the build is cancelled, which it answers as the real builder does).
 */
function gatedBuilder(lines = 3) {
  let open: () => void = () => undefined;
  const gate = new Promise<void>((resolve) => (open = resolve));
  const builder = async (options: BuildOptions): Promise<BuiltImage> => {
    options.onProgress?.({ step: 'base', percent: 12, line: null });
    for (let i = 0; i < lines; i++) options.onProgress?.({ step: 'base', percent: null, line: `line ${i}` });
    options.onProgress?.({ step: 'boot-test', percent: 75, line: null });
    await new Promise<void>((resolve, reject) => {
      options.signal?.addEventListener('abort', () =>
        reject(new FiredeckError('cancelled', 'image build cancelled in step boot-test')),
      );
      void gate.then(resolve);
    });
    return publish(options.outputParent, manifestOf('test', '20261204T000000-cccccccccccc', '2026-12-04T00:00:00Z'));
  };
  return { builder, open: () => open() };
}

function service(builder: ReturnType<typeof gatedBuilder>['builder']): ImageService {
  return new ImageService({
    catalog,
    emit: (e) => events.push(e),
    recipesDir,
    cacheDir: stateDir,
    builder,
    pinnedBy: () => new Map([['test@20261204T000000-cccccccccccc', ['web-1']]]),
  });
}

describe('ImageService builds', () => {
  it('starts a build that runs on after the answer, listed with its step and log until it publishes', async () => {
    const gated = gatedBuilder();
    const images = service(gated.builder);
    const started = images.start({ recipe: 'test', skipBootTest: true });
    expect(started).toMatchObject({ recipe: 'test', status: 'running', version: null });

    await expect.poll(() => images.listBuilds()[0]?.step).toBe('boot-test');
    const running = images.listBuilds('test');
    expect(running).toHaveLength(1);
    expect(running[0]).toMatchObject({ buildId: started.buildId, status: 'running', percent: 75, logLines: 3 });
    expect(running[0]!.log).toEqual(['line 0', 'line 1', 'line 2']);
    expect(images.listBuilds('cli')).toEqual([]);

    gated.open();
    await expect.poll(() => images.listBuilds()[0]?.status).toBe('succeeded');
    const done = images.listBuilds()[0]!;
    expect(done).toMatchObject({ version: '20261204T000000-cccccccccccc', percent: 100, step: 'publish' });
    expect(done.endedAt).not.toBeNull();
    expect(catalog.currentVersion('test')).toBe('20261204T000000-cccccccccccc');
    expect(events.at(-1)).toMatchObject({ type: 'image.build', buildId: started.buildId, status: 'succeeded' });
    // The listing carries the manifest's details and the VMs pinned to the version.
    expect(images.list('test')[0]).toMatchObject({
      rootfsSha256: 'd'.repeat(64),
      packages: [{ name: 'systemd', version: '252' }],
      bootTest: { seconds: 21, markers: ['vm'] },
      pinnedBy: ['web-1'],
    });
  });

  it('cancels a running build: it ends cancelled, publishes nothing and frees the image for the next build', async () => {
    const gated = gatedBuilder();
    const images = service(gated.builder);
    const started = images.start({ recipe: 'test', skipBootTest: true });
    await expect.poll(() => images.listBuilds()[0]?.step).toBe('boot-test');
    // A second build of the same image is refused while one runs.
    expect(() => images.start({ recipe: 'test', skipBootTest: true })).toThrow(
      expect.objectContaining({ kind: 'conflict' }),
    );

    images.cancel(started.buildId);
    await expect.poll(() => images.listBuilds()[0]?.status).toBe('cancelled');
    const ended = images.listBuilds()[0]!;
    expect(ended.error).toMatchObject({ kind: 'cancelled' });
    expect(ended.version).toBeNull();
    expect(catalog.list('test')).toEqual([]);
    expect(events.at(-1)).toMatchObject({ buildId: started.buildId, status: 'cancelled' });
    // Cancelling it again returns it as it ended; an unknown build is not_found.
    expect(images.cancel(started.buildId).status).toBe('cancelled');
    expect(() => images.cancel('build-00000000')).toThrow(expect.objectContaining({ kind: 'not_found' }));

    const again = images.start({ recipe: 'test', skipBootTest: true });
    expect(again.status).toBe('running');
    images.cancel(again.buildId);
    await expect.poll(() => images.listBuilds()[0]?.status).toBe('cancelled');
  });

  it('keeps only the last log lines of a build', async () => {
    const gated = gatedBuilder(IMAGE_BUILD_LOG_TAIL + 7);
    const images = service(gated.builder);
    images.start({ recipe: 'test', skipBootTest: true });
    await expect.poll(() => images.listBuilds()[0]?.step).toBe('boot-test');
    const [build] = images.listBuilds();
    expect(build!.log).toHaveLength(IMAGE_BUILD_LOG_TAIL);
    expect(build!.log[0]).toBe('line 7');
    expect(build!.logLines).toBe(IMAGE_BUILD_LOG_TAIL + 7);
    images.cancelAll();
    await expect.poll(() => images.listBuilds()[0]?.status).toBe('cancelled');
  });

  it('image.build (awaited) throws the build failure', async () => {
    const images = service(async () => {
      throw new FiredeckError('build_failed', 'step checks: 1 check(s) failed\nnode missing');
    });
    await expect(images.build({ recipe: 'test', skipBootTest: true })).rejects.toMatchObject({
      kind: 'build_failed',
    });
    expect(images.listBuilds()[0]).toMatchObject({ status: 'failed', step: 'prepare' });
    expect(images.listBuilds()[0]!.log.at(-1)).toBe('step checks: 1 check(s) failed');
  });
});

describe('ImageService gc plan', () => {
  it('says what gc would remove and removes nothing; gc then removes exactly that', () => {
    const images = service(gatedBuilder().builder);
    const parent = catalog.imageDir('test');
    fs.mkdirSync(parent, { recursive: true });
    for (const [v, at] of [
      ['v1', '2026-01-01T00:00:00Z'],
      ['v2', '2026-01-02T00:00:00Z'],
      ['v3', '2026-01-03T00:00:00Z'],
    ] as const) {
      publish(parent, manifestOf('test', v, at));
    }
    catalog.promote('test', 'v3');
    const plan = images.gc('test', 1, { dryRun: true });
    expect(plan.removed).toEqual(['test@v1']);
    expect(plan.freedBytes).toBeGreaterThan(0);
    expect(catalog.list('test').map((v) => v.version)).toEqual(['v1', 'v2', 'v3']);
    expect(images.gc('test', 1)).toEqual(plan);
    expect(catalog.list('test').map((v) => v.version)).toEqual(['v2', 'v3']);
  });
});
