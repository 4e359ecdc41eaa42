import { execFile } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defaultCacheDir } from '../../host-daemon/src/images/builder';
import { ImageCatalog } from '../../host-daemon/src/images/catalog';
import { ImageService } from '../../host-daemon/src/images/service';
import type { AuthSession } from '../../src/shared/protocol/auth';
import type { DaemonRig } from '../rig/daemon';
import { startOidcProvider, type OidcRig } from '../rig/oidc';
import type { AppUnderTest } from './support/app';
import { CANVAS, waitForCanvas, waitForStillCanvas } from './support/guestDesktop';
import { startSshStack, type SshStack } from './support/sshStack';
import { REPO_ROOT } from './support/webMode';

/**
 * Support staff log a user's CLI in from the app (issue 14), on real parts: web mode in Chromium, the rig's sshd
 * to a root firedeckd with the pipeline's golden `cli` and `browser` images, the rig's OpenID provider on the
 * VMs' bridge and the `selftest` provider. The login is typed into the embedded desktop (noVNC) as a person
 * types; the app then shows where the credential went, and the terminal of that CLI VM shows its hash.
 */

const PREFIX = 'fdt6u';
const CIDR = '10.213.66.0/24';
const GATEWAY = '10.213.66.1';
const USER = 'alice@example.org';
/** Two VMs (the user's CLI VM and the browser VM) booting under TCG on a busy two-core machine. */
const SESSION_MS = 1_500_000;
const SHOTS = path.join(REPO_ROOT, 'test-results');
/**
 * The recipes the images are built from: this checkout's (the rig otherwise looks for images/ upwards from the
 * vitest binary, which in a worktree whose node_modules is a link finds another checkout's recipes).
 */
process.env.FIREDECK_IMAGES_DIR ??= path.join(REPO_ROOT, 'images');

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

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

function inCliVm(daemon: DaemonRig, vm: string, command: string): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(daemon.firedeckdCommand, ['shell', vm, '--', command], { timeout: 180_000 }, (err, stdout, stderr) =>
      err ? reject(new Error(`firedeckd shell ${vm}: ${stderr || err.message}`)) : resolve(stdout),
    );
  });
}

/** Waits until the session view shows `state` reached; fails at once, with the error shown, if it ended otherwise. */
async function reached(page: Page, state: string, timeoutMs: number): Promise<void> {
  const handle = await page.waitForFunction(
    (want) => {
      const view = document.querySelector('[data-testid="auth-session"]');
      const now = view?.getAttribute('data-state');
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

const shot = (page: Page, name: string): Promise<unknown> =>
  page.screenshot({ path: path.join(SHOTS, `e2e-auth-${name}.png`) }).catch(() => undefined);

describe("OAuth on a user's behalf (web mode): Users → Connect → login typed into the desktop → written, verified", () => {
  let stack: SshStack | undefined;
  let oidc: OidcRig | undefined;
  let daemon: DaemonRig;
  let app: AppUnderTest;
  let page: Page;

  beforeAll(async () => {
    fs.mkdirSync(SHOTS, { recursive: true });
    const port = await freePort();
    stack = await startSshStack({
      mode: 'web',
      prefix: PREFIX,
      cidr: CIDR,
      env: { FIREDECK_SELFTEST_ISSUER: `http://${GATEWAY}:${port}` },
      installImages: goldenImages,
    });
    ({ daemon, app, page } = stack);
    // The bridge (and its address) exists once the daemon has started: the provider listens there only.
    oidc = await startOidcProvider({ host: GATEWAY, port });
  }, 3_600_000);

  afterAll(async () => {
    await shot(page, 'last');
    await stack?.stop();
    await oidc?.close();
  }, 180_000);

  it(
    "shows the timeline and the browser VM's desktop, takes the typed login, and opens the CLI VM's terminal with the same hash",
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
      const pagesBefore = oidc!.loginPagesServed();
      await cell.getByRole('button', { name: 'Connect' }).click();

      // The session view: the timeline advances as the daemon reports.
      const session = page.getByTestId('auth-session');
      await session.waitFor();
      await reached(page, 'vm_created', 120_000);
      await shot(page, '2-vm-created');
      // Cancel is offered while the login runs.
      expect(await page.getByRole('button', { name: 'Cancel' }).isEnabled()).toBe(true);
      await reached(page, 'awaiting_user_auth', SESSION_MS);
      const url = await page.getByTestId('authorize-url').innerText();
      expect(url.startsWith(`${oidc!.issuer}/`)).toBe(true);

      // The desktop of the browser VM, beside the timeline, with the provider's login page in Firefox.
      await page
        .getByTestId('desktop-state')
        .filter({ hasText: /^connected$/ })
        .waitFor({ timeout: 300_000 });
      await oidc!.waitForLoginPage(300_000, pagesBefore);
      await waitForCanvas(page, 'the login page in Firefox', { minLightShare: 0.2 }, 300_000);
      await waitForStillCanvas(page, 'the login page drawn', 2000, 120_000);
      await shot(page, '3-login-page');

      // Typed like a person: the username field has the focus (autofocus), Tab, the password, Enter.
      await page.locator(CANVAS).focus();
      await page.keyboard.type(oidc!.username, { delay: 30 });
      await page.keyboard.press('Tab');
      await page.keyboard.type(oidc!.password, { delay: 30 });
      await shot(page, '4-typed');
      await page.keyboard.press('Enter');

      // credential captured → written to CLI VM …, verified → done.
      await reached(page, 'completed', SESSION_MS);
      const written = page.getByTestId('auth-written');
      await written.waitFor({ timeout: 10_000 });
      await page.getByTestId('auth-done').waitFor({ timeout: 120_000 });
      const text = await written.innerText();
      expect(text).toMatch(/^written to CLI VM \S+, verified \((status check|hash)\) sha256 [0-9a-f]{12}/);
      expect(await page.getByTestId('auth-state').innerText()).toBe('completed');
      await shot(page, '5-written-verified');

      const [done] = (await daemon.call('auth.list', { user: USER })) as AuthSession[];
      expect(done?.state).toBe('completed');
      const result = done!.result!;
      expect(text).toContain(`written to CLI VM ${result.cliVmName}, verified`);
      expect(text).toContain(result.sha256.slice(0, 12));
      // The browser VM is gone; the button opens the CLI VM, never it.
      expect((await daemon.call('vm.get', { id: done!.browserVmId! })).state).toBe('destroyed');

      await page.getByRole('button', { name: `Open terminal in ${result.cliVmName}` }).click();
      await page.getByTestId('vm-title').filter({ hasText: result.cliVmName }).waitFor();
      await page
        .getByTestId('terminal-state')
        .filter({ hasText: /^connected$/ })
        .waitFor({ timeout: 120_000 });
      const screen = page.getByTestId('terminal').locator('.xterm-rows');
      await page.getByTestId('terminal').click();
      await page.keyboard.type('sha256sum ~/.firedeck-selftest/credentials.json; echo sum-$((6*7))\n');
      await screen.filter({ hasText: 'sum-42' }).waitFor({ timeout: 60_000 });
      expect(await screen.innerText()).toContain(result.sha256);
      await shot(page, '6-terminal-sha256');

      // Secrets stay on the host: neither the password typed nor the refresh token is in the page or main's output.
      const creds = JSON.parse(await inCliVm(daemon, result.cliVmName, `cat ${result.path}`)) as {
        refresh_token: string;
        access_token: string;
      };
      expect(creds.refresh_token.length).toBeGreaterThan(10);
      await page.getByRole('button', { name: 'Sessions', exact: true }).click();
      await page.getByTestId(`history-${done!.id}`).waitFor();
      expect(await page.getByTestId(`history-${done!.id}`).innerText()).toContain(done!.startedBy);
      await shot(page, '7-history');
      const content = await page.content();
      for (const secret of [creds.refresh_token, creds.access_token, oidc!.password]) {
        expect(content.includes(secret)).toBe(false);
        expect(app.output().includes(secret)).toBe(false);
      }
    },
    SESSION_MS * 2,
  );
});
