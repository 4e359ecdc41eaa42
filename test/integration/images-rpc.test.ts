import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isFiredeckError } from '../../src/shared/errors';
import type { DaemonEvent } from '../../src/shared/protocol/events';
import type { ImageManifest } from '../../src/shared/protocol/image';
import { copySparse, ImageCatalog } from '../../host-daemon/src/images/catalog';
import { baseLayerFile, LAYER_GRACE_MS, layersDir } from '../../host-daemon/src/images/layerCache';
import { loadRecipe } from '../../host-daemon/src/images/recipe';
import { startDaemon, type DaemonRig } from '../rig/daemon';
import { ensureTestImage, installTestImage, type TestImage } from '../rig/testImage';
import { makeTempDir } from '../rig/tmp';
import { removeLinks, subscribeEvents, type EventLog } from './daemon-helpers';

const PREFIX = 'fdt4g';
const RECIPES = path.resolve(__dirname, '../../images');

function cli(daemon: DaemonRig, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(daemon.firedeckdCommand, args, { timeout: 120_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

async function rpcError(p: Promise<unknown>): Promise<Error> {
  try {
    await p;
  } catch (err) {
    return err as Error;
  }
  throw new Error('the call succeeded but should have failed');
}

describe('image.* RPC and `firedeckd image`', () => {
  let daemon: DaemonRig;
  let image: TestImage;
  let events: EventLog;
  let cacheDir: string;

  beforeAll(async () => {
    image = await ensureTestImage();
    cacheDir = makeTempDir('image-cache');
    daemon = await startDaemon({
      env: {
        FIREDECK_CACHE_DIR: cacheDir,
        FIREDECK_BRIDGE: `${PREFIX}br0`,
        FIREDECK_CIDR: '10.213.41.0/24',
        FIREDECK_DEVICE_PREFIX: PREFIX,
      },
    });
    await installTestImage(daemon.stateDir, image);
    events = await subscribeEvents(daemon.socketPath);
  });

  afterAll(async () => {
    events?.close();
    if (daemon) {
      for (const vm of await daemon.call('vm.list', {}).catch(() => [])) {
        await daemon.call('vm.destroy', { id: vm.id }).catch(() => undefined);
      }
      await daemon.stop();
    }
    removeLinks(PREFIX);
    if (cacheDir) fs.rmSync(cacheDir, { recursive: true, force: true });
  });

  /** Publishes the test image again as an older, non-current `version` (a sparse copy, as a build would). */
  async function publishOlder(version: string, builtAt: string): Promise<void> {
    const src = makeTempDir('older-image');
    try {
      for (const file of ['rootfs.ext4', 'vmlinuz', 'initrd.img']) {
        await copySparse(path.join(image.dir, file), path.join(src, file));
      }
      const manifest: ImageManifest = { ...image.manifest, version, builtAt };
      fs.writeFileSync(path.join(src, 'manifest.json'), JSON.stringify(manifest));
      await new ImageCatalog(daemon.stateDir).importVersion('test', src, { promote: false });
    } finally {
      fs.rmSync(src, { recursive: true, force: true });
    }
  }

  /** A cached layer file last used `ageMs` ago. */
  function layer(file: string, ageMs: number): string {
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(file, Buffer.alloc(4096, 1));
    const when = new Date(Date.now() - ageMs);
    fs.utimesSync(file, when, when);
    return file;
  }

  it('lists the catalog with the current version marked', async () => {
    const list = await daemon.call('image.list', {});
    expect(list).toEqual([
      expect.objectContaining({
        name: 'test',
        version: image.manifest.version,
        current: true,
        kernelRelease: image.manifest.kernel.release,
      }),
    ]);
    expect(await daemon.call('image.list', { name: 'cli' })).toEqual([]);
  });

  it('image.build reuses a published version with the same recipe hash and reports it as an event', async () => {
    const result = await daemon.call('image.build', { recipe: 'test', skipBootTest: true });
    expect(result.reused).toBe(true);
    expect(result.image.version).toBe(image.manifest.version);
    const done = await events.waitFor(
      (e: DaemonEvent) => e.type === 'image.build' && e.buildId === result.buildId && e.status === 'succeeded',
      10_000,
      'image.build succeeded',
    );
    expect(done).toMatchObject({ recipe: 'test', step: 'publish', percent: 100 });
  });

  it('answers bad params, unknown recipes and unknown versions with typed errors', async () => {
    const bad = await rpcError(daemon.call('image.build', { recipe: '../etc' }));
    expect(isFiredeckError(bad, 'invalid_params')).toBe(true);
    const unknown = await rpcError(daemon.call('image.build', { recipe: 'nope' }));
    expect(isFiredeckError(unknown, 'not_found')).toBe(true);
    expect(unknown.message).toMatch(/no recipe named nope/);
    const version = await rpcError(daemon.call('image.promote', { name: 'test', version: 'v-missing' }));
    expect(isFiredeckError(version, 'not_found')).toBe(true);
    const rollback = await rpcError(daemon.call('image.rollback', { name: 'test' }));
    expect(isFiredeckError(rollback, 'invalid_state')).toBe(true);
  });

  it('gc never removes the current version', async () => {
    expect(await daemon.call('image.gc', { keep: 0 })).toEqual({ removed: [], freedBytes: 0 });
    expect((await daemon.call('image.list', { name: 'test' }))[0]?.current).toBe(true);
  });

  it('gc keeps the versions VMs were made from (from the command line and over RPC) and the layers recipes need', async () => {
    await publishOlder('v-older', '2020-01-01T00:00:00.000Z');
    await publishOlder('v-old', '2020-02-01T00:00:00.000Z');
    // Not started: its disk is made, and its kernel and initrd stay pinned to test@v-old.
    const vm = await daemon.call('vm.create', {
      name: 'pinned',
      kind: 'cli',
      owner: 'ops',
      image: 'test@v-old',
      start: false,
    });
    expect(vm.image).toBe('test@v-old');
    const needed = layer(baseLayerFile(cacheDir, loadRecipe(path.join(RECIPES, 'test'))), 2 * LAYER_GRACE_MS);
    const stale = layer(path.join(layersDir(cacheDir), 'base-bookworm-0000000000000000.tar'), 2 * LAYER_GRACE_MS);

    const byCli = await cli(daemon, ['image', 'gc', '--keep', '0']);
    expect(byCli.stderr).toBe('');
    expect(byCli.code).toBe(0);
    expect(byCli.stdout).toMatch(/^removed 2 version\(s\) and layer\(s\), freed \d+\.\d\d GiB$/m);
    expect(byCli.stdout).toContain('  test@v-older\n');
    expect(byCli.stdout).toContain('  layer base-bookworm-0000000000000000.tar\n');
    expect(fs.existsSync(stale)).toBe(false);
    expect(fs.existsSync(needed)).toBe(true);
    const versions = (await daemon.call('image.list', { name: 'test' })).map((v) => v.version);
    expect(versions.sort()).toEqual([image.manifest.version, 'v-old'].sort());

    // Over RPC the daemon's own VM list protects it the same way, until the VM is destroyed.
    expect(await daemon.call('image.gc', { keep: 0 })).toEqual({ removed: [], freedBytes: 0 });
    await daemon.call('vm.destroy', { id: vm.id });
    const after = await daemon.call('image.gc', { keep: 0 });
    expect(after.removed).toEqual(['test@v-old']);
    expect(after.freedBytes).toBeGreaterThan(0);
    expect((await daemon.call('image.list', { name: 'test' })).map((v) => v.version)).toEqual([image.manifest.version]);
  });

  it('`firedeckd image list` and `image build` work from the command line', async () => {
    const list = await cli(daemon, ['image', 'list']);
    expect(list.code).toBe(0);
    expect(list.stdout).toContain(`* test@${image.manifest.version}`);
    const build = await cli(daemon, ['image', 'build', 'test', '--skip-boot-test']);
    expect(build.code).toBe(0);
    expect(build.stderr).toMatch(/reused test@/);
    const bad = await cli(daemon, ['image', 'promote', 'test']);
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toMatch(/version missing/);
  });
});
