import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDaemon, type DaemonRig } from '../rig/daemon';
import { ensureTestImage, installTestImage } from '../rig/testImage';
import { makeTempDir } from '../rig/tmp';
import { recipesRoot } from '../../host-daemon/src/images/recipe';
import type { ImageBuild } from '../../src/shared/protocol/image';
import { removeLinks, stopSuiteDaemon, subscribeEvents, type EventLog } from './daemon-helpers';

/**
 * A full disk (issue 17, fault suite): the daemon's whole state dir (store, images, VM disks, console logs) on a
 * real tmpfs just big enough for the store and the test image. A VM create then runs out of space while it clones
 * the rootfs: the caller gets a typed error that says so and what to do, nothing of the VM is left (no record in
 * the fleet, no dir, no TAP, no lease), the daemon keeps serving; once the filesystem has room again the same
 * create works. No guest boots.
 */

const PREFIX = 'fddf';
const CIDR = '10.213.106.0/24';

let base: string;
let stateDir: string;
let recipes: string;
let mounted = false;
let daemon: DaemonRig | undefined;
let events: EventLog | undefined;

function usedMib(dir: string): number {
  const out = execFileSync('df', ['--output=used', '-B1M', dir], { encoding: 'utf8' });
  return Number(out.trim().split('\n')[1]);
}

beforeAll(async () => {
  removeLinks(PREFIX);
  const image = await ensureTestImage();
  base = makeTempDir('diskfull');
  fs.chmodSync(base, 0o711);
  stateDir = path.join(base, 'state');
  fs.mkdirSync(stateDir);
  // Room for the image as installed (its blocks, not its apparent size) and a little more: not for a clone.
  const imageMib = Math.ceil(
    Number(execFileSync('du', ['-s', '-B1M', image.dir], { encoding: 'utf8' }).split('\t')[0]),
  );
  execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${imageMib + 64}m,mode=0700`, 'tmpfs', stateDir]);
  mounted = true;
  await installTestImage(stateDir, image);
  // The recipes the daemon builds: the repository's, with the test recipe changed (its hash too), so that a build
  // of it makes a new version instead of reusing the one installed.
  recipes = path.join(base, 'recipes');
  fs.cpSync(recipesRoot(), recipes, { recursive: true });
  const recipeFile = path.join(recipes, 'test', 'recipe.json');
  const recipe = JSON.parse(fs.readFileSync(recipeFile, 'utf8')) as { description: string };
  recipe.description += ' (disk-full suite)';
  fs.writeFileSync(recipeFile, JSON.stringify(recipe, null, 2));
  daemon = await startDaemon({
    reuse: { stateDir, runDir: path.join(base, 'run') },
    env: {
      FIREDECK_BRIDGE: `${PREFIX}br0`,
      FIREDECK_CIDR: CIDR,
      FIREDECK_DEVICE_PREFIX: PREFIX,
      FIREDECK_IMAGES_DIR: recipes,
    },
  });
  events = await subscribeEvents(daemon.socketPath);
}, 900_000);

afterAll(async () => {
  events?.close();
  await stopSuiteDaemon(daemon, PREFIX);
  if (mounted) execFileSync('umount', ['-l', stateDir]);
  fs.rmSync(base, { recursive: true, force: true });
});

describe('VM create on a full disk', () => {
  it('fails with a typed error that says the disk is full, leaves nothing behind, and works once there is room', async () => {
    const before = usedMib(stateDir);
    const err = await daemon!
      .call('vm.create', { name: 'df-cli', kind: 'cli', owner: 'ops', image: 'test', start: false })
      .then(
        () => null,
        (e: unknown) => e as { kind: string; message: string; hint?: string },
      );
    expect(err).not.toBeNull();
    expect(err!.kind).toBe('resource_exhausted');
    expect(err!.message).toMatch(/No space left/);
    expect(err!.hint ?? '').toMatch(/Free space/);

    // Nothing half-made: no VM in the fleet (destroyed ones aside), no disk, no TAP, the space given back.
    expect((await daemon!.call('vm.list', {})).map((v) => v.name)).not.toContain('df-cli');
    const vmsDir = path.join(stateDir, 'vms');
    expect(fs.existsSync(vmsDir) ? fs.readdirSync(vmsDir) : []).toEqual([]);
    expect(usedMib(stateDir)).toBeLessThanOrEqual(before + 2);
    const taps = JSON.parse(execFileSync('ip', ['-j', 'link', 'show'], { encoding: 'utf8' })) as { ifname: string }[];
    expect(taps.map((l) => l.ifname).filter((n) => n.startsWith(`${PREFIX}tap`))).toEqual([]);
    // The daemon still serves, and its store is whole.
    expect((await daemon!.call('daemon.info', {})).protocolVersion).toBe(1);

    // Room again: the same create works.
    execFileSync('mount', ['-o', 'remount,size=4g', stateDir]);
    const vm = await daemon!.call('vm.create', {
      name: 'df-cli',
      kind: 'cli',
      owner: 'ops',
      image: 'test',
      start: false,
    });
    expect(vm.state).toBe('stopped');
    expect(fs.existsSync(path.join(vmsDir, vm.id))).toBe(true);
  });
});

/** Starts a build of the changed test recipe and resolves with how it ended (its events, never a poll). */
async function build(): Promise<ImageBuild> {
  const started = await daemon!.call('image.build.start', { recipe: 'test', skipBootTest: true });
  await events!.waitFor(
    (e) => e.type === 'image.build' && e.buildId === started.buildId && e.status !== 'running',
    900_000,
    `build ${started.buildId} ends`,
  );
  const [ended] = (await daemon!.call('image.builds', { recipe: 'test' })).filter((b) => b.buildId === started.buildId);
  return ended!;
}

describe('image build on a full disk', () => {
  it('fails with a typed error, publishes nothing and keeps the current version; with room again it builds', async () => {
    const versions = async (): Promise<string[]> =>
      (await daemon!.call('image.list', { name: 'test' })).map((v) => v.version).sort();
    const before = await versions();
    const current = (await daemon!.call('image.list', { name: 'test' })).find((v) => v.current)?.version;
    const imageDir = path.join(stateDir, 'images', 'test');
    const entries = (): string[] => fs.readdirSync(imageDir).sort();
    const entriesBefore = entries();
    // Just room for what is there now.
    execFileSync('mount', ['-o', `remount,size=${usedMib(stateDir) + 48}m`, stateDir]);

    const failed = await build();
    expect(failed.status).toBe('failed');
    expect(failed.error).toMatchObject({ kind: 'resource_exhausted' });
    expect(failed.error!.message).toMatch(/^No space left on the filesystem of .* for image test /);
    expect(failed.error!.hint).toMatch(/Free space there .*image gc/);
    // Nothing half-published: the same versions, the same current one, no staging dir left.
    expect(await versions()).toEqual(before);
    expect((await daemon!.call('image.list', { name: 'test' })).find((v) => v.current)?.version).toBe(current);
    expect(entries()).toEqual(entriesBefore);

    execFileSync('mount', ['-o', 'remount,size=4g', stateDir]);
    const ok = await build();
    expect(ok.error).toBeNull();
    expect(ok.status).toBe('succeeded');
    expect(await versions()).toEqual([...before, ok.version!].sort());
  });
});
