import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AuthSession } from '../../src/shared/protocol/auth';
import type { DaemonRig } from '../rig/daemon';
import { installGoldenImages } from '../rig/goldenImages';
import { startOidcProvider, type OidcRig } from '../rig/oidc';
import { freePort } from '../rig/tmp';
import type { AppUnderTest } from './support/app';
import { CANVAS, waitForCanvas } from './support/guestDesktop';
import { startSshStack, type SshStack } from './support/sshStack';
import { REPO_ROOT } from './support/webMode';

/**
 * Support staff log a user's CLI in from the app (issue 14), on real parts: web mode in Chromium, the rig's sshd
 * to a root firedeckd with the pipeline's golden `cli` and `browser` images, the rig's OpenID provider on the
 * VMs' bridge and the `selftest` provider. A first login is refused by the provider (shown with its reason, in a
 * second tab as well); Retry runs it again, the login typed into the embedded desktop (noVNC) as a person types;
 * the app shows where the credential went, and the terminal of that CLI VM shows its hash. A third login is
 * cancelled while it waits for the user.
 */

const PREFIX = 'fdt6u';
const CIDR = '10.213.66.0/24';
const GATEWAY = '10.213.66.1';
const USER = 'alice@example.org';
/** Two VMs (the user's CLI VM and the browser VM) booting under TCG on a busy two-core machine. */
const SESSION_MS = 1_500_000;
const SHOTS = path.join(REPO_ROOT, 'test-results');
const REFUSAL = 'the account is locked (said by the test provider)';

function inCliVm(daemon: DaemonRig, vm: string, command: string): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(daemon.firedeckdCommand, ['shell', vm, '--', command], { timeout: 180_000 }, (err, stdout, stderr) =>
      err ? reject(new Error(`firedeckd shell ${vm}: ${stderr || err.message}`)) : resolve(stdout),
    );
  });
}

/**
 * Waits until the session view shows `state` reached (a done step of the timeline); fails at once, with the error
 * the view shows, if the session ended otherwise.
 */
async function reached(page: Page, state: string, timeoutMs: number): Promise<void> {
  const handle = await page.waitForFunction(
    (want) => {
      const now = document.querySelector('[data-testid="auth-session"]')?.getAttribute('data-state');
      if (document.querySelector(`[data-testid="auth-timeline"] li.done[data-state="${want}"]`)) return 'ok';
      if (now && ['completed', 'failed', 'timeout', 'cancelled'].includes(now)) {
        return `ended ${now}: ${document.querySelector('[data-testid="auth-error"]')?.textContent ?? ''}`;
      }
      return false;
    },
    state,
    { timeout: timeoutMs, polling: 500 },
  );
  const outcome = (await handle.jsonValue()) as string;
  if (outcome !== 'ok') throw new Error(`the session did not reach ${state}: ${outcome}`);
}

/** The user's newest session, as the daemon has it. */
async function newestSession(daemon: DaemonRig): Promise<AuthSession> {
  const [newest] = (await daemon.call('auth.list', { user: USER })) as AuthSession[];
  if (!newest) throw new Error(`no auth session for ${USER}`);
  return newest;
}

const shot = (page: Page, name: string): Promise<unknown> =>
  page.screenshot({ path: path.join(SHOTS, `e2e-auth-${name}.png`) }).catch(() => undefined);

/** Every WebSocket frame the page receives (web mode's one link to main), to search for secrets afterwards. */
function recordFrames(page: Page, into: Buffer[]): void {
  page.on('websocket', (ws) => {
    ws.on('framereceived', (f) => into.push(Buffer.isBuffer(f.payload) ? f.payload : Buffer.from(f.payload)));
    ws.on('framesent', (f) => into.push(Buffer.isBuffer(f.payload) ? f.payload : Buffer.from(f.payload)));
  });
}

describe("OAuth on a user's behalf (web mode): Users → Connect → login typed into the desktop → written, verified", () => {
  let stack: SshStack | undefined;
  let oidc: OidcRig | undefined;
  let daemon: DaemonRig;
  let app: AppUnderTest;
  let page: Page;
  let second: Page | undefined;
  const frames: Buffer[] = [];
  let cliVmName = '';
  let credentialPath = '';

  beforeAll(async () => {
    fs.mkdirSync(SHOTS, { recursive: true });
    const port = await freePort();
    stack = await startSshStack({
      mode: 'web',
      prefix: PREFIX,
      cidr: CIDR,
      env: { FIREDECK_SELFTEST_ISSUER: `http://${GATEWAY}:${port}` },
      installImages: (stateDir) => installGoldenImages(stateDir, ['cli', 'browser']),
    });
    ({ daemon, app, page } = stack);
    recordFrames(page, frames);
    // The bridge (and its address) exists once the daemon has started: the provider listens there only.
    oidc = await startOidcProvider({ host: GATEWAY, port });
  }, 3_600_000);

  afterAll(async () => {
    await shot(page, 'last');
    await second?.close().catch(() => undefined);
    await stack?.stop();
    await oidc?.close();
  }, 180_000);

  it(
    "a refused login is shown with its reason (in a second tab too); Retry: the login typed into the desktop, written, verified, the CLI VM's terminal shows the hash",
    async () => {
      // A user with no VM yet, typed in as "New user"; the four providers, the self-test last.
      await page.getByRole('button', { name: 'Users', exact: true }).click();
      await page.getByRole('textbox', { name: 'New user' }).fill(USER);
      await page.getByRole('button', { name: 'Add user' }).click();
      const cell = page.getByTestId(`provider-${USER}-selftest`);
      await cell.waitFor();
      expect(await cell.getAttribute('data-state')).toBe('not_connected');
      const headers = await page.getByTestId('users-table').locator('thead th').allInnerTexts();
      expect(headers.slice(1).map((h) => h.trim())).toEqual([
        'Codex',
        'Claude Code',
        'Gemini CLI',
        'Self-test (local OpenID provider) (self-test)',
      ]);
      await shot(page, '1-users');

      // The provider will refuse this first login (as a locked account is refused).
      oidc!.refuseNextAuthorization('access_denied', REFUSAL);
      await cell.getByRole('button', { name: 'Connect', exact: true }).click();
      await page.getByTestId('auth-session').waitFor();
      await reached(page, 'vm_created', 180_000);
      await shot(page, '2-vm-created');
      expect(await page.getByRole('button', { name: 'Cancel' }).isEnabled()).toBe(true);

      // A second tab (the printed link again) opens the same session from the Users view and follows it live.
      second = await app.browser!.newPage();
      recordFrames(second, frames);
      await second.goto(app.web!.url);
      await second.getByRole('button', { name: 'Users', exact: true }).click();
      const secondCell = second.getByTestId(`provider-${USER}-selftest`);
      await second.locator(`[data-testid="provider-${USER}-selftest"][data-state="in_progress"]`).waitFor();
      await secondCell.getByRole('button', { name: /in progress/ }).click();
      await second.getByTestId('auth-session').waitFor();
      const stateWhenOpened = await second.getByTestId('auth-session').getAttribute('data-state');
      expect(['vm_created', 'ready', 'awaiting_user_auth']).toContain(stateWhenOpened);

      // The refusal ends it: failed, with the provider's words, in both tabs without a reload.
      for (const p of [page, second]) {
        await p.locator('[data-testid="auth-session"][data-state="failed"]').waitFor({ timeout: SESSION_MS });
        const error = await p.getByTestId('auth-error').innerText();
        expect(error).toContain('access_denied');
        expect(error).toContain(REFUSAL);
      }
      expect(oidc!.authorizationsRefused()).toBe(1);
      expect(oidc!.loginPagesServed()).toBe(0);
      await shot(page, '3-refused');
      await shot(second, '3-refused-second-tab');
      const refused = await newestSession(daemon);
      expect(refused.state).toBe('failed');
      await expect
        .poll(async () => (await daemon.call('vm.get', { id: refused.browserVmId! })).state, { timeout: 120_000 })
        .toBe('destroyed');
      await second.close();
      second = undefined;

      // Retry: a new session for the same user and provider, which says what it retries.
      const pagesBefore = oidc!.loginPagesServed();
      const shownBefore = oidc!.loginPagesShown();
      await page.getByRole('button', { name: 'Retry' }).click();
      await page.getByRole('button', { name: refused.id }).waitFor({ timeout: 30_000 });
      await reached(page, 'awaiting_user_auth', SESSION_MS);
      const retry = await newestSession(daemon);
      expect(retry.retryOf).toBe(refused.id);
      const url = await page.getByTestId('authorize-url').innerText();
      expect(url.startsWith(`${oidc!.issuer}/`)).toBe(true);

      // The desktop of the browser VM, beside the timeline, with the provider's login page in Firefox.
      await page
        .getByTestId('desktop-state')
        .filter({ hasText: /^connected$/ })
        .waitFor({ timeout: 300_000 });
      await oidc!.waitForLoginPage(300_000, pagesBefore);
      // Firefox says when the page is painted with the username field focused: when a person starts typing.
      await oidc!.waitForLoginShown(300_000, shownBefore);
      await waitForCanvas(page, 'the login page in Firefox', { minLightShare: 0.2 }, 120_000);
      await shot(page, '4-login-page');

      // Typed like a person into the embedded desktop: the username (focused), Tab, the password, Enter. A login
      // the provider refused (keys lost by a guest starved of CPU) is typed again on the page shown anew.
      for (let attempt = 1; ; attempt++) {
        const submitted = oidc!.loginsSubmitted();
        const shown = oidc!.loginPagesShown();
        await page.locator(CANVAS).focus();
        await page.keyboard.type(oidc!.username, { delay: 40 });
        await page.keyboard.press('Tab');
        await page.keyboard.type(oidc!.password, { delay: 40 });
        await shot(page, `5-typed-${attempt}`);
        await page.keyboard.press('Enter');
        const outcome = await oidc!.waitForLoginSubmitted(180_000, submitted);
        if (outcome.ok) break;
        if (attempt === 3) throw new Error(`the provider refused the typed login 3 times: ${JSON.stringify(outcome)}`);
        await oidc!.waitForLoginShown(300_000, shown);
      }

      // credential captured → written to CLI VM …, verified → done.
      await reached(page, 'completed', SESSION_MS);
      const written = page.getByTestId('auth-written');
      await written.waitFor({ timeout: 10_000 });
      await page.getByTestId('auth-done').waitFor({ timeout: 120_000 });
      const text = await written.innerText();
      expect(text).toMatch(/^written to CLI VM \S+, verified \(status check\) sha256 [0-9a-f]{12}/);
      expect(await page.getByTestId('auth-state').innerText()).toBe('completed');
      await shot(page, '6-written-verified');

      const done = await newestSession(daemon);
      expect(done.id).toBe(retry.id);
      expect(done.state).toBe('completed');
      expect(done.transitions.map((t) => t.state)).toEqual([
        'pending',
        'vm_created',
        'ready',
        'awaiting_user_auth',
        'authenticating',
        'completed',
      ]);
      const result = done.result!;
      cliVmName = result.cliVmName;
      credentialPath = result.path;
      expect(text).toContain(`written to CLI VM ${result.cliVmName}, verified`);
      expect(text).toContain(result.sha256.slice(0, 12));
      // The browser VM is gone; the button opens the CLI VM, never it.
      expect((await daemon.call('vm.get', { id: done.browserVmId! })).state).toBe('destroyed');

      await page.getByRole('button', { name: `Open terminal in ${result.cliVmName}` }).click();
      await page.getByTestId('vm-title').filter({ hasText: result.cliVmName }).waitFor();
      await page
        .getByTestId('terminal-state')
        .filter({ hasText: /^connected$/ })
        .waitFor({ timeout: 120_000 });
      const screen = page.getByTestId('terminal').locator('.xterm-rows');
      await page.getByTestId('terminal').click();
      await page.keyboard.type(`sha256sum ~/${path.relative('/home/firedeck', result.path)}; echo sum-$((6*7))\n`);
      await screen.filter({ hasText: 'sum-42' }).waitFor({ timeout: 60_000 });
      expect(await screen.innerText()).toContain(result.sha256);
      await shot(page, '7-terminal-sha256');

      // History: every session, who ran it (the OS user the daemon saw), how it ended.
      await page.getByRole('button', { name: 'Sessions', exact: true }).click();
      for (const s of [refused, done]) {
        const row = page.getByTestId(`history-${s.id}`);
        await row.waitFor();
        expect(await row.innerText()).toContain(s.startedBy);
      }
      expect(await page.getByTestId(`history-${refused.id}`).innerText()).toContain('failed');
      await shot(page, '8-history');

      // Secrets stay on the host: neither the typed password nor the tokens are in the pages, the frames the
      // pages exchanged with main, main's output, the daemon's log, its audit rows or the VMs' console logs.
      const creds = JSON.parse(await inCliVm(daemon, result.cliVmName, `cat ${result.path}`)) as {
        refresh_token: string;
        access_token: string;
      };
      expect(creds.refresh_token.length).toBeGreaterThan(10);
      const db = new Database(path.join(daemon.stateDir, 'firedeck.db'), { readonly: true });
      const audit = JSON.stringify(db.prepare('SELECT * FROM audit_events').all());
      db.close();
      const haystacks: [string, string][] = [
        ['page', await page.content()],
        ['main output', app.output()],
        ['daemon log', daemon.log()],
        ['audit', audit],
        ['frames', Buffer.concat(frames).toString('latin1')],
      ];
      for (const dir of fs.readdirSync(path.join(daemon.stateDir, 'vms'))) {
        for (const f of ['console.log', 'console.log.1']) {
          const p = path.join(daemon.stateDir, 'vms', dir, f);
          if (fs.existsSync(p)) haystacks.push([`${dir}/${f}`, fs.readFileSync(p, 'latin1')]);
        }
      }
      expect(frames.length).toBeGreaterThan(10);
      for (const secret of [creds.refresh_token, creds.access_token, oidc!.password]) {
        for (const [what, hay] of haystacks) expect(hay.includes(secret), what).toBe(false);
      }
    },
    SESSION_MS * 2,
  );

  it(
    'cancel while the login waits for the user: the browser VM is gone, the CLI VM and its credential untouched',
    async () => {
      expect(cliVmName).not.toBe('');
      const before = (await inCliVm(daemon, cliVmName, `sha256sum ${credentialPath}`)).split(' ')[0];
      const cliVm = (await daemon.call('vm.list', {})).find((v) => v.name === cliVmName)!;
      const pidBefore = cliVm.pid;

      await page.getByRole('button', { name: 'Users', exact: true }).click();
      const cell = page.getByTestId(`provider-${USER}-selftest`);
      expect(await cell.getAttribute('data-state')).toBe('connected');
      await cell.getByRole('button', { name: 'Connect', exact: true }).click();
      await page.getByTestId('auth-session').waitFor();
      await reached(page, 'awaiting_user_auth', SESSION_MS);
      const live = await newestSession(daemon);
      expect(live.state).toBe('awaiting_user_auth');
      await shot(page, '9-awaiting');

      await page.getByRole('button', { name: 'Cancel' }).click();
      await page.locator('[data-testid="auth-session"][data-state="cancelled"]').waitFor({ timeout: 120_000 });
      await page.getByTestId('auth-desktop-placeholder').filter({ hasText: 'The browser VM is gone.' }).waitFor();
      await shot(page, '10-cancelled');
      const cancelled = await daemon.call('auth.get', { id: live.id });
      expect(cancelled.state).toBe('cancelled');
      expect(cancelled.transitions.at(-1)!.actor).not.toBe('');
      // The browser VM is destroyed right after (its QEMU stopped, its disk deleted).
      await expect
        .poll(async () => (await daemon.call('vm.get', { id: live.browserVmId! })).state, { timeout: 120_000 })
        .toBe('destroyed');
      const cliAfter = await daemon.call('vm.get', { id: cliVm.id });
      expect(cliAfter.state).toBe('running');
      expect(cliAfter.pid).toBe(pidBefore);
      expect((await inCliVm(daemon, cliVmName, `sha256sum ${credentialPath}`)).split(' ')[0]).toBe(before);
      // The Users view: still connected (the cancelled login changed nothing).
      await page.getByRole('button', { name: 'Users', exact: true }).click();
      expect(await page.getByTestId(`provider-${USER}-selftest`).getAttribute('data-state')).toBe('connected');
    },
    SESSION_MS * 2,
  );
});
