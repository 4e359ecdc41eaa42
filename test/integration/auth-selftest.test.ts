import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AuthSession, AuthSessionState } from '../../src/shared/protocol/auth';
import { PROVIDERS } from '../../src/shared/protocol/providers';
import { startDaemon, type DaemonRig } from '../rig/daemon';
import { desktopScreenshot, typeLoginIntoDesktop } from '../rig/desktopLogin';
import { installGoldenImages } from '../rig/goldenImages';
import { startOidcProvider, type OidcRig } from '../rig/oidc';
import { freePort, makeTempDir } from '../rig/tmp';
import { reachSessionState, removeLinks, subscribeEvents, type EventLog } from './daemon-helpers';

/**
 * The support-staff job end to end, on real parts: a real firedeckd (root) with the pipeline's golden `cli` and
 * `browser` images, the rig's OpenID provider on the daemon's bridge, and a `selftest` auth session. Firefox in
 * the browser VM shows the provider's login page; the test types the login into it through `firedeckd vnc` as a
 * person would (it never calls the callback itself); the credential is captured, vaulted, written into the
 * user's CLI VM (running: over its sshd; stopped: offline into its disk) and verified there by hash; the browser
 * VM is gone after each session.
 */

const PREFIX = 'fdau';
const CIDR = '10.213.61.0/24';
const GATEWAY = '10.213.61.1';
const USER = 'alice@example.org';
const SESSION_MS = 1_500_000;
const SHOTS = path.join(makeTempDir('auth-shots'));

let daemon: DaemonRig | undefined;
let oidc: OidcRig | undefined;
let events: EventLog | undefined;

function run(file: string, args: string[], timeoutMs = 120_000): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(file, args, { timeout: timeoutMs, maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (!err) return resolve(stdout);
      reject(new Error(`${file} ${args.join(' ')}: ${stderr || err.message}`));
    });
  });
}

function waitForState(id: string, state: AuthSessionState, timeoutMs: number): Promise<AuthSession> {
  return reachSessionState(events!, daemon!, id, state, timeoutMs);
}

/** `firedeckd shell <vm> -- <command>`: the command's stdout, run as the CLI VM's user. */
function inCliVm(vm: string, command: string): Promise<string> {
  return run(daemon!.firedeckdCommand, ['shell', vm, '--', command], 180_000);
}

/** Runs one selftest session to completion, the login typed into the desktop; returns the ended session. */
async function selftestSession(shot: string): Promise<AuthSession> {
  const pagesBefore = oidc!.loginPagesServed();
  const shownBefore = oidc!.loginPagesShown();
  const started = await daemon!.call('auth.start', { user: USER, provider: 'selftest' });
  expect(started.state).toBe('pending');
  // A second session for the same user and provider is refused while this one is live.
  await expect(daemon!.call('auth.start', { user: USER, provider: 'selftest' })).rejects.toThrow(/already has a live/);

  const awaiting = await waitForState(started.id, 'awaiting_user_auth', SESSION_MS);
  expect(awaiting.authorizeUrl).toMatch(new RegExp(`^${oidc!.issuer}/`));
  expect(awaiting.browserVmId).not.toBeNull();
  try {
    // Firefox in the browser VM fetched the provider's login page (the rig counts what it serves)…
    await oidc!.waitForLoginPage(300_000, pagesBefore);
    // …and shows it, the username field focused: now a person starts typing.
    await oidc!.waitForLoginShown(300_000, shownBefore);
  } catch (err) {
    // What the desktop showed instead, for whoever reads the failure.
    const picture = await desktopScreenshot(
      { daemon: daemon!, shots: SHOTS },
      awaiting.browserVmId!,
      `${shot}-no-login-page.png`,
    ).catch(String);
    throw new Error(`${String(err)}; the desktop: ${picture}`);
  }
  await typeLoginIntoDesktop({ daemon: daemon!, oidc: oidc!, shots: SHOTS }, awaiting.browserVmId!, shot);

  const done = await waitForState(started.id, 'completed', SESSION_MS);
  expect(done.transitions.map((t) => t.state)).toEqual([
    'pending',
    'vm_created',
    'ready',
    'awaiting_user_auth',
    'authenticating',
    'completed',
  ]);
  const browser = await daemon!.call('vm.get', { id: awaiting.browserVmId! });
  expect(browser.state).toBe('destroyed');
  expect(fs.existsSync(path.join(daemon!.stateDir, 'vms', browser.id))).toBe(false);
  return done;
}

describe('auth session: selftest provider, real VMs, real OpenID provider', () => {
  beforeAll(async () => {
    removeLinks(PREFIX);
    const port = await freePort();
    daemon = await startDaemon({
      env: {
        FIREDECK_BRIDGE: `${PREFIX}br0`,
        FIREDECK_CIDR: CIDR,
        FIREDECK_DEVICE_PREFIX: PREFIX,
        FIREDECK_SELFTEST_ISSUER: `http://${GATEWAY}:${port}`,
      },
    });
    await installGoldenImages(daemon.stateDir, ['cli', 'browser']);
    // The bridge (and its address) exists once the daemon has started: the provider listens there only.
    oidc = await startOidcProvider({ host: GATEWAY, port });
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
    await oidc?.close();
    removeLinks(PREFIX);
    process.stderr.write(`auth-selftest screenshots: ${SHOTS}\n`);
  });

  it(
    "writes into the user's stopped CLI VM offline (its disk, never a running one's), which then boots with the file; no secret anywhere else",
    async () => {
      // The user's CLI VM, never started: the session writes into its disk offline. (The online path, into a
      // running CLI VM over its sshd, is the support-staff e2e spec's: test/e2e/auth.test.ts.)
      const cli = await daemon!.call('vm.create', {
        name: 'cli-alice',
        kind: 'cli',
        owner: USER,
        image: 'cli',
        start: false,
      });
      expect(cli.state).toBe('stopped');
      const done = await selftestSession('offline');
      const result = done.result!;
      expect(result.transfer).toBe('offline');
      expect(result.cliVmName).toBe(cli.name);
      expect(result.verifiedBy).toBe('hash');
      expect(result.path).toBe(`/home/firedeck/${PROVIDERS.selftest.credential.path}`);
      expect((await daemon!.call('vm.get', { id: cli.id })).state).toBe('stopped');
      const readyAgain = events!.events.length;
      await daemon!.call('vm.start', { id: cli.id });
      // The marker of this boot (events after the start), awaited without the client's per-call timeout.
      await events!.waitFor(
        (e) =>
          e.type === 'vm.ready' && e.vmId === cli.id && e.marker === 'sshd' && events!.events.indexOf(e) >= readyAgain,
        900_000,
        `FIREDECK-READY sshd of ${cli.name} after its start`,
      );
      // Inside the CLI VM: the file's hash, mode and owner, and the login program's own check.
      const inside = await inCliVm(
        cli.name,
        `sha256sum ${result.path} | cut -d' ' -f1; stat -c '%a %U' ${result.path}; firedeck-selftest-login status`,
      );
      const [sha, modeOwner, status] = inside.trim().split('\n');
      expect(sha).toBe(result.sha256);
      expect(modeOwner).toBe('600 firedeck');
      expect(status).toMatch(/^logged in as /);

      // The secret (the refresh token) is in no log, event, console log, audit row or vault plaintext.
      const refresh = JSON.parse(await inCliVm(cli.name, `cat ${result.path}`)) as { refresh_token: string };
      expect(refresh.refresh_token.length).toBeGreaterThan(10);
      const haystacks: [string, string][] = [
        ['daemon log', daemon!.log()],
        ['events', JSON.stringify(events!.events)],
        [
          'audit',
          JSON.stringify(
            new Database(path.join(daemon!.stateDir, 'firedeck.db'), { readonly: true })
              .prepare('SELECT * FROM audit_events')
              .all(),
          ),
        ],
      ];
      for (const dir of fs.readdirSync(path.join(daemon!.stateDir, 'vms'))) {
        for (const f of ['console.log', 'console.log.1']) {
          const p = path.join(daemon!.stateDir, 'vms', dir, f);
          if (fs.existsSync(p)) haystacks.push([`${dir}/${f}`, fs.readFileSync(p, 'latin1')]);
        }
      }
      for (const f of ['firedeck.db', 'firedeck.db-wal']) {
        const p = path.join(daemon!.stateDir, f);
        if (fs.existsSync(p)) haystacks.push([f, fs.readFileSync(p, 'latin1')]);
      }
      for (const [what, text] of haystacks) expect(text.includes(refresh.refresh_token), what).toBe(false);
      // The vault dropped its copy once written.
      const db = new Database(path.join(daemon!.stateDir, 'firedeck.db'), { readonly: true });
      const rows = db.prepare('SELECT state, ciphertext FROM credentials').all() as {
        state: string;
        ciphertext: Buffer | null;
      }[];
      db.close();
      expect(rows).toEqual([{ state: 'written', ciphertext: null }]);

      // The operator's view from the host's shell: the session, completed, by root.
      const listed = await run(daemon!.firedeckdCommand, ['auth', 'ls', '--user', USER]);
      const lines = listed.trim().split('\n');
      expect(lines[0]).toMatch(/^ID\s+USER\s+PROVIDER\s+STATE/);
      expect(lines.slice(1).map((l) => l.split(/\s+/).slice(1, 5))).toEqual([[USER, 'selftest', 'completed', 'root']]);
    },
    SESSION_MS * 2,
  );
});
