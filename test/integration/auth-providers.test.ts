import { execFile } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isAuthSessionLive, type AuthSession } from '../../src/shared/protocol/auth';
import { PROVIDERS, type ProviderName } from '../../src/shared/protocol/providers';
import type { Vm } from '../../src/shared/protocol/vm';
import { startDaemon, type DaemonRig } from '../rig/daemon';
import { desktopScreenshot } from '../rig/desktopLogin';
import { installGoldenImages } from '../rig/goldenImages';
import { startRecordingProxy, type RecordingProxy } from '../rig/recordingProxy';
import { freePort, makeTempDir } from '../rig/tmp';
import { reachSessionState, removeLinks, stopSuiteDaemon, subscribeEvents, type EventLog } from './daemon-helpers';

/**
 * The three real CLIs (pinned in the browser image) start their logins in a real browser VM: each reaches
 * `awaiting_user_auth` with its real authorize URL, and the browser VM's Firefox asks for that URL's host through
 * the proxy the operator set (`proxy.set`, sealed in the vault, on the browser VM's config drive only): this
 * machine reaches no provider, so the rig's proxy records the request and answers 502. Cancelling leaves the
 * user's CLI VM running, untouched. Then each CLI's headless login runs in that CLI VM (no browser VM) and
 * shows its URL (and code) or the network error it printed. One browser VM at a time; one CLI VM throughout.
 */

const PREFIX = 'fdap';
const CIDR = '10.213.82.0/24';
const GATEWAY = '10.213.82.1';
const USER = 'carol@example.org';
const STATE_MS = 1_200_000;
/** Drawn per run: the proxy's password must show up nowhere but the browser VMs' config drives. */
const PROXY_PASSWORD = crypto.randomBytes(12).toString('base64url');
const SHOTS = makeTempDir('auth-providers-shots');

let daemon: DaemonRig | undefined;
let events: EventLog | undefined;
let proxy: RecordingProxy | undefined;
let cliVm: Vm | undefined;

beforeAll(async () => {
  removeLinks(PREFIX);
  const port = await freePort();
  daemon = await startDaemon({
    env: {
      FIREDECK_BRIDGE: `${PREFIX}br0`,
      FIREDECK_CIDR: CIDR,
      FIREDECK_DEVICE_PREFIX: PREFIX,
      // Guests may open the proxy's port on the host, nothing else of it.
      FIREDECK_GUEST_ALLOW: `${GATEWAY}:${port}/tcp`,
    },
  });
  await installGoldenImages(daemon.stateDir, ['cli', 'browser']);
  // The bridge and its address exist once the daemon has started: the proxy listens there only.
  proxy = await startRecordingProxy({ host: GATEWAY, port });
  events = await subscribeEvents(daemon.socketPath);
  const withPassword = `http://support:${PROXY_PASSWORD}@${GATEWAY}:${port}`;
  const set = await daemon.call('proxy.set', { http: withPassword, https: withPassword });
  expect(set.https).toBe(`http://***@${GATEWAY}:${port}`);
}, 3_600_000);

afterAll(async () => {
  events?.close();
  await stopSuiteDaemon(daemon, PREFIX);
  await proxy?.close();
  process.stderr.write(`auth-providers screenshots: ${SHOTS}\n`);
});

/** Resolves when the VM's state event says `state`. */
function vmReaches(id: string, state: Vm['state'], timeoutMs: number): Promise<unknown> {
  return events!.waitFor(
    (e) => e.type === 'vm.state' && e.vm.id === id && e.vm.state === state,
    timeoutMs,
    `${id} → ${state}`,
  );
}

async function realLogin(provider: ProviderName): Promise<void> {
  const started = await daemon!.call('auth.start', { user: USER, provider });
  const awaiting: AuthSession = await reachSessionState(events!, daemon!, started.id, 'awaiting_user_auth', STATE_MS);
  const url = new URL(awaiting.authorizeUrl ?? '');
  // The CLI's own authorize URL, on the provider's origin, as the table says.
  expect(PROVIDERS[provider].headless?.urlOrigins ?? []).toContain(url.origin);
  const browserVmId = awaiting.browserVmId!;
  expect((await daemon!.call('vm.get', { id: browserVmId })).state).toBe('running');
  // Firefox in the browser VM asks for that host, through the operator's proxy (Firefox's request, not the CLI's,
  // which has the same proxy: the browser names itself in its User-Agent).
  const seen = await proxy!
    .waitFor(new RegExp(`^CONNECT ${url.hostname.replace(/\./g, '\\.')}:443$`), 600_000, /Firefox\//)
    .catch(async (err: unknown) => {
      const shot = await desktopScreenshot(
        { daemon: daemon!, shots: SHOTS },
        browserVmId,
        `${provider}-no-request.png`,
      );
      throw new Error(`${String(err)}; the desktop: ${shot}`);
    });
  expect(seen.line).toBe(`CONNECT ${url.hostname}:443`);
  process.stderr.write(
    `${provider}: awaiting_user_auth at ${url.origin}; the proxy saw ${seen.line} from ${seen.userAgent}\n`,
  );
  await desktopScreenshot({ daemon: daemon!, shots: SHOTS }, browserVmId, `${provider}-awaiting.png`);

  // The user's CLI VM: made by the first session, the same one (same hypervisor) for the others.
  const cli = await daemon!.call('vm.get', { id: awaiting.cliVmId! });
  if (cliVm === undefined) cliVm = cli;
  expect(cli.id).toBe(cliVm.id);

  const cancelled = await daemon!.call('auth.cancel', { id: started.id });
  expect(['cancelled']).toContain(cancelled.state);
  await vmReaches(browserVmId, 'destroyed', 300_000);
  expect(fs.existsSync(path.join(daemon!.stateDir, 'vms', browserVmId))).toBe(false);
  const after = await daemon!.call('vm.get', { id: cliVm.id });
  expect(['booting', 'running']).toContain(after.state);
  expect(after.pid).not.toBeNull();
  if (cli.pid !== null) expect(after.pid).toBe(cli.pid);
}

describe('the real CLIs’ logins in a browser VM, through the operator’s proxy', () => {
  it(
    'codex: `codex login` opens auth.openai.com in Firefox; cancel leaves the CLI VM',
    () => realLogin('codex'),
    3_600_000,
  );

  it(
    'claude_code: `claude auth login` opens its authorize URL in Firefox; cancel leaves the CLI VM',
    () => realLogin('claude_code'),
    3_600_000,
  );

  it(
    'gemini_cli: interactive `gemini` opens accounts.google.com in Firefox; cancel leaves the CLI VM',
    () => realLogin('gemini_cli'),
    3_600_000,
  );

  it('headless: each CLI’s own headless login in the user’s CLI VM shows its URL or the network error it printed', async () => {
    const outcomes: string[] = [];
    for (const provider of ['codex', 'claude_code', 'gemini_cli'] as const) {
      const started = await daemon!.call('auth.start', { user: USER, provider, mode: 'headless' });
      expect(started.mode).toBe('headless');
      const shown = await events!.waitFor(
        (e) =>
          e.type === 'auth.session' &&
          e.session.id === started.id &&
          (e.session.state === 'awaiting_user_auth' || !isAuthSessionLive(e.session.state)),
        STATE_MS,
        `headless ${provider} shows a URL or ends`,
      );
      const s = (shown as Extract<typeof shown, { type: 'auth.session' }>).session;
      expect(s.browserVmId).toBeNull();
      // The user's one CLI VM (the browser logins above made it; alone, this test's first session does).
      cliVm ??= await daemon!.call('vm.get', { id: s.cliVmId! });
      expect(s.cliVmId).toBe(cliVm.id);
      const headless = PROVIDERS[provider].headless!;
      if (headless.kind === 'device_code' && s.state === 'failed') {
        // Offline, Codex cannot get its device code: the session ends with the CLI's own words.
        expect(s.error?.message ?? '').toMatch(/error|ENOTFOUND|EAI_AGAIN|resolve|network|connect|dns/i);
        expect(s.error?.message ?? '').not.toMatch(/[?&](state|code_challenge)=/);
        outcomes.push(`${provider}: failed: ${s.error?.message.replace(/\s+/g, ' ')}`);
        continue;
      }
      // A paste-code login prints its URL without the network: it must show it, and wait for the code.
      expect(s.error, `${provider}: ${JSON.stringify(s.error)}`).toBeNull();
      expect(s.state).toBe('awaiting_user_auth');
      expect(headless.urlOrigins).toContain(new URL(s.authorizeUrl!).origin);
      if (headless.kind === 'device_code') expect(s.userCode).toMatch(/\S/);
      else expect(s.awaitingCode).toBe(true);
      outcomes.push(
        `${provider}: ${new URL(s.authorizeUrl!).origin} (${s.awaitingCode ? 'awaits a code' : s.userCode})`,
      );
      const cancelled = await daemon!.call('auth.cancel', { id: s.id });
      expect(cancelled.state).toBe('cancelled');
    }
    process.stderr.write(`headless logins: ${outcomes.join(' | ')}\n`);
    // Every login's processes ended with its session: nothing of the three CLIs runs in the CLI VM.
    const left = await new Promise<string>((resolve) =>
      execFile(
        daemon!.firedeckdCommand,
        ['shell', cliVm!.id, '--', 'pgrep -af "[c]odex|[c]laude|[g]emini" || true'],
        { timeout: 120_000 },
        (_err, stdout) => resolve(stdout),
      ),
    );
    expect(left.trim()).toBe('');
    const after = await daemon!.call('vm.get', { id: cliVm!.id });
    expect(after.state).toBe('running');
    if (cliVm!.pid !== null) expect(after.pid).toBe(cliVm!.pid);
  }, 3_600_000);

  it('the proxy’s password is in no daemon log line, event or audit row', async () => {
    const audit = await daemon!.call('audit.list', { limit: 500 });
    expect(audit.entries.some((e) => e.method === 'proxy.set')).toBe(true);
    const everything = [daemon!.log(), JSON.stringify(events!.events), JSON.stringify(audit)].join('\n');
    expect(everything).not.toContain(PROXY_PASSWORD);
    // The VMs' console logs (what a guest printed) too.
    const vmsDir = path.join(daemon!.stateDir, 'vms');
    for (const id of fs.readdirSync(vmsDir)) {
      const log = path.join(vmsDir, id, 'console.log');
      if (fs.existsSync(log)) expect(fs.readFileSync(log, 'utf8'), log).not.toContain(PROXY_PASSWORD);
    }
  });
});
