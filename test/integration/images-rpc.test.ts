import { execFile } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isFiredeckError } from '../../src/shared/errors';
import type { DaemonEvent } from '../../src/shared/protocol/events';
import { startDaemon, type DaemonRig } from '../rig/daemon';
import { ensureTestImage, installTestImage, type TestImage } from '../rig/testImage';
import { subscribeEvents, type EventLog } from './daemon-helpers';

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

  beforeAll(async () => {
    image = await ensureTestImage();
    daemon = await startDaemon();
    await installTestImage(daemon.stateDir, image);
    events = await subscribeEvents(daemon.socketPath);
  });

  afterAll(async () => {
    events?.close();
    await daemon?.stop();
  });

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
