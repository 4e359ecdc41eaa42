import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defaultCacheDir } from '../../host-daemon/src/images/builder';
import { ImageCatalog } from '../../host-daemon/src/images/catalog';
import { ImageService } from '../../host-daemon/src/images/service';
import type { AuthSession, AuthSessionState } from '../../src/shared/protocol/auth';
import type { DaemonEvent } from '../../src/shared/protocol/events';
import type { ProviderName } from '../../src/shared/protocol/providers';
import { startDaemon, type DaemonRig } from '../rig/daemon';
import { removeLinks, subscribeEvents, type EventLog } from './daemon-helpers';

/**
 * The three real CLIs' logins in real browser VMs (their providers cannot be reached from here): each session
 * starts the CLI through the agent, the CLI opens its real authorize URL in Firefox, and the session shows
 * `awaiting_user_auth` with that URL. Cancel at each state the tests can reach leaves no browser VM behind and
 * the user's CLI VM untouched.
 */

const PREFIX = 'fdap';
const CIDR = '10.213.62.0/24';
const USER = 'bob@example.org';
const BOOT_MS = 1_200_000;

/** Where each CLI's authorize page lives (the URL the agent caught from $BROWSER or xdg-open). */
const AUTHORIZE: Record<Exclude<ProviderName, 'selftest'>, RegExp> = {
  codex: /^https:\/\/auth\.openai\.com\/oauth\/authorize\?/,
  claude_code: /^https:\/\/claude\.(ai|com)\/\S*oauth\/authorize\?/,
  gemini_cli: /^https:\/\/accounts\.google\.com\/o\/oauth2\/v2\/auth\?/,
};

let daemon: DaemonRig | undefined;
let events: EventLog | undefined;

async function goldenImages(stateDir: string): Promise<void> {
  const golden = new ImageCatalog(path.join(defaultCacheDir(), 'golden'));
  const service = new ImageService({
    catalog: golden,
    emit: (e) => {
      if (e.type === 'image.build' && e.line === null)
        process.stderr.write(`[${e.recipe} image] ${e.step} ${e.status}\n`);
    },
  });
  for (const name of ['cli', 'browser'] as const) {
    const built = await service.build({ recipe: name });
    await new ImageCatalog(stateDir).importVersion(name, golden.resolve(`${name}@${built.image.version}`).dir);
  }
}

async function reach(id: string, state: AuthSessionState, timeoutMs: number): Promise<AuthSession> {
  const match = (e: DaemonEvent): boolean =>
    e.type === 'auth.session' &&
    e.session.id === id &&
    (e.session.state === state || ['completed', 'failed', 'timeout', 'cancelled'].includes(e.session.state));
  const e = (await events!.waitFor(match, timeoutMs, `auth ${id} → ${state}`)) as Extract<
    DaemonEvent,
    { type: 'auth.session' }
  >;
  if (e.session.state !== state) {
    throw new Error(
      `auth ${id} ended ${e.session.state}: ${JSON.stringify(e.session.error)}\n${daemon!.log().slice(-3000)}`,
    );
  }
  return e.session;
}

/** Cancels and checks what a cancel promises: the session ends cancelled, its browser VM is gone. */
async function cancelAndCheck(id: string, expectedLast: AuthSessionState): Promise<AuthSession> {
  const cancelled = await daemon!.call('auth.cancel', { id });
  expect(cancelled.state).toBe('cancelled');
  const states = cancelled.transitions.map((t) => t.state);
  expect(states.at(-2)).toBe(expectedLast);
  expect(cancelled.transitions.at(-1)!.actor).toBe('root');
  // Its browser VM (if it got one) is destroyed by the time the cancel answers; no other browser VM of it lives.
  const mine = (await daemon!.call('vm.list', { includeDestroyed: true })).filter(
    (v) => v.kind === 'browser' && (v.id === cancelled.browserVmId || v.name === `auth-${id.slice(5, 17)}`),
  );
  expect(mine.filter((v) => v.state !== 'destroyed').map((v) => `${v.name} ${v.state}`)).toEqual([]);
  if (expectedLast !== 'pending') expect(mine.length).toBeGreaterThan(0);
  return cancelled;
}

describe('auth sessions with the real CLIs, and cancel', () => {
  beforeAll(async () => {
    removeLinks(PREFIX);
    daemon = await startDaemon({
      env: { FIREDECK_BRIDGE: `${PREFIX}br0`, FIREDECK_CIDR: CIDR, FIREDECK_DEVICE_PREFIX: PREFIX },
    });
    await goldenImages(daemon.stateDir);
    events = await subscribeEvents(daemon.socketPath);
  }, 3_600_000);

  afterAll(async () => {
    events?.close();
    if (daemon) {
      for (const vm of await daemon.call('vm.list', {}).catch(() => [])) {
        await daemon.call('vm.destroy', { id: vm.id }).catch(() => undefined);
      }
      await daemon.stop();
    }
    removeLinks(PREFIX);
  });

  let cliVmId = '';

  it(
    'cancels in pending and in vm_created; the CLI VM is made once and stays',
    async () => {
      const first = await daemon!.call('auth.start', { user: USER, provider: 'codex' });
      await cancelAndCheck(first.id, 'pending');

      const second = await daemon!.call('auth.start', { user: USER, provider: 'codex' });
      const created = await reach(second.id, 'vm_created', BOOT_MS);
      expect(created.browserVmId).not.toBeNull();
      expect(created.cliVmId).not.toBeNull();
      await cancelAndCheck(second.id, 'vm_created');
      const clis = (await daemon!.call('vm.list', {})).filter((v) => v.kind === 'cli' && v.owner === USER);
      expect(clis).toHaveLength(1);
      cliVmId = clis[0]!.id;
      // A retry of a cancelled session is a new session for the same user and provider.
      const retried = await daemon!.call('auth.retry', { id: second.id });
      expect(retried.id).not.toBe(second.id);
      expect(retried.retryOf).toBe(second.id);
      await cancelAndCheck(retried.id, 'pending');
      const history = await daemon!.call('auth.list', { user: USER });
      expect(history.map((s) => s.id)).toEqual([retried.id, second.id, first.id]);
    },
    BOOT_MS,
  );

  it(
    "opens each real CLI's authorize page in its browser VM (gemini's through xdg-open, after its interactive start); cancel there leaves the CLI VM as it was",
    async () => {
      const cliBefore = await daemon!.call('vm.get', { id: cliVmId });
      // All three at once (one live session per user and provider): three browser VMs boot side by side.
      const providers = ['codex', 'claude_code', 'gemini_cli'] as const;
      const sessions = await Promise.all(
        providers.map((provider) => daemon!.call('auth.start', { user: USER, provider })),
      );
      const awaiting = await Promise.all(sessions.map((s) => reach(s.id, 'awaiting_user_auth', BOOT_MS)));
      for (const [i, s] of awaiting.entries()) {
        expect(s.authorizeUrl, providers[i]).toMatch(AUTHORIZE[providers[i]!]);
        expect(s.cliVmId).toBe(cliVmId);
      }
      for (const s of awaiting) await cancelAndCheck(s.id, 'awaiting_user_auth');
      const cliAfter = await daemon!.call('vm.get', { id: cliVmId });
      expect(cliAfter.pid).toBe(cliBefore.pid);
      expect(cliAfter.state).toBe('running');
    },
    BOOT_MS * 2,
  );
});

describe('auth session deadlines', () => {
  const PREFIX_T = 'fdat';
  let rig: DaemonRig | undefined;
  let log: EventLog | undefined;

  beforeAll(async () => {
    removeLinks(PREFIX_T);
    // A browser VM cannot reach its markers in 4 s: the session must time out in vm_created, and clean up.
    rig = await startDaemon({
      env: {
        FIREDECK_BRIDGE: `${PREFIX_T}br0`,
        FIREDECK_CIDR: '10.213.63.0/24',
        FIREDECK_DEVICE_PREFIX: PREFIX_T,
        FIREDECK_AUTH_TIMEOUTS: 'vm_created=4',
      },
    });
    await goldenImages(rig.stateDir);
    log = await subscribeEvents(rig.socketPath);
  }, 3_600_000);

  afterAll(async () => {
    log?.close();
    if (rig) {
      for (const vm of await rig.call('vm.list', {}).catch(() => [])) {
        await rig.call('vm.destroy', { id: vm.id }).catch(() => undefined);
      }
      await rig.stop();
    }
    removeLinks(PREFIX_T);
  });

  it('times out a state at its deadline, says so, and leaves no browser VM', async () => {
    const s = await rig!.call('auth.start', { user: 'carol', provider: 'selftest' });
    const ended = (await log!.waitFor(
      (e) => e.type === 'auth.session' && e.session.id === s.id && e.session.state === 'timeout',
      120_000,
      'the session timing out',
    )) as Extract<DaemonEvent, { type: 'auth.session' }>;
    expect(ended.session.transitions.map((t) => t.state)).toEqual(['pending', 'vm_created', 'timeout']);
    expect(ended.session.error?.kind).toBe('timeout');
    expect(ended.session.error?.message).toMatch(/timed out while vm_created/);
    expect(ended.session.deadline).toBeNull();
    // The session is settled before its browser VM is gone; the run destroys it right after.
    await log!.waitFor(
      (e) => e.type === 'vm.destroyed' && e.vmId === ended.session.browserVmId,
      120_000,
      'the browser VM destroyed',
    );
    const browsers = (await rig!.call('vm.list', {})).filter((v) => v.kind === 'browser');
    expect(browsers).toEqual([]);
  }, 300_000);
});
