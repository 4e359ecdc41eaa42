import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { appCallNames } from '../../src/shared/app/contract';
import { startDaemon, type DaemonRig } from '../rig/daemon';
import { startSshd, type Sshd } from '../rig/sshd';
import { makeTempDir } from '../rig/tmp';
import { appModes, startApp, type AppUnderTest } from './support/app';
import { addSshHost, confirmDialog, trustAndConnect } from './support/ui';
import { REPO_ROOT } from './support/webMode';

const RESULTS_DIR = path.join(REPO_ROOT, 'test-results');

describe.each(appModes())('walking skeleton (%s): app → main → ssh2 → sshd → firedeckd dial-stdio → daemon', (mode) => {
  let daemon: DaemonRig;
  let sshd: Sshd;
  let app: AppUnderTest;
  let page: Page;
  let expected: { hostname: string; version: string };

  beforeAll(async () => {
    daemon = await startDaemon();
    sshd = await startSshd({ pathPrepend: [daemon.binDir] });
    app = await startApp(mode, { localDaemon: daemon.firedeckdCommand });
    page = app.page;
    const info = await daemon.call('daemon.info', {});
    expected = { hostname: info.hostname, version: info.version };
  });

  afterAll(async () => {
    await app?.stop();
    await sshd?.stop();
    await daemon?.stop();
  });

  const status = (): ReturnType<Page['getByTestId']> => page.getByTestId('connection-status');

  it('opens and shows the embedded local host connected', async () => {
    if (app.web) {
      // The link's token is traded for the session secret and dropped from the address bar.
      expect(new URL(page.url()).searchParams.has('token')).toBe(false);
    }
    await status()
      .filter({ hasText: `connected to ${expected.hostname} — firedeckd ${expected.version}` })
      .waitFor({ timeout: 30_000 });
  });

  it('adds the sshd host, shows its fingerprint for trust on first use, and connects through SSH', async () => {
    await addSshHost(page, sshd, 'rig-sshd');
    const row = page.getByTestId('host-row-rig-sshd');
    await status().filter({ hasText: 'rig-sshd: not connected' }).waitFor();
    const shown = await trustAndConnect(page, 'rig-sshd', sshd.hostKeyFingerprint);
    expect(shown).toContain('ssh-ed25519');

    await status()
      .filter({ hasText: `connected to ${expected.hostname} — firedeckd ${expected.version}` })
      .waitFor({ timeout: 30_000 });
    await row.locator('.pill', { hasText: 'connected' }).waitFor();
    expect(await row.innerText()).toContain(sshd.hostKeyFingerprint);

    // The daemon saw a caller that came through SSH: sshd logged the key login.
    expect(fs.readFileSync(path.join(sshd.dir, 'sshd.log'), 'utf8')).toMatch(/Accepted publickey for root/);

    fs.mkdirSync(RESULTS_DIR, { recursive: true });
    const shot = path.join(RESULTS_DIR, 'e2e-connect.png');
    await page.screenshot({ path: shot, fullPage: true });
    const png = fs.readFileSync(shot);
    expect(png.length).toBeGreaterThan(1000);
    expect(png.subarray(0, 8).equals(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]))).toBe(true);
  });

  it('refuses a changed host key before authenticating, with "host key changed"', async () => {
    await addSshHost(page, sshd, 'changed-key');
    const row = page.getByTestId('host-row-changed-key');

    // Pin another key for this endpoint, as if the host had been trusted before its key changed.
    const keyDir = makeTempDir('otherkey');
    try {
      execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', path.join(keyDir, 'k')]);
      const blob = Buffer.from(fs.readFileSync(path.join(keyDir, 'k.pub'), 'utf8').split(' ')[1]!, 'base64');
      const fingerprint = `SHA256:${crypto.createHash('sha256').update(blob).digest('base64').replace(/=+$/, '')}`;
      const db = new Database(path.join(app.dataDir, 'firedeck.sqlite'));
      const changed = db
        .prepare('UPDATE hosts SET host_key = ?, host_key_fingerprint = ? WHERE name = ?')
        .run(blob.toString('base64'), fingerprint, 'changed-key');
      db.close();
      expect(changed.changes).toBe(1);
    } finally {
      fs.rmSync(keyDir, { recursive: true, force: true });
    }

    const logPath = path.join(sshd.dir, 'sshd.log');
    const acceptedBefore = (fs.readFileSync(logPath, 'utf8').match(/Accepted publickey/g) ?? []).length;
    await row.getByRole('button', { name: 'Connect' }).click();
    await row.getByTestId('host-error').filter({ hasText: 'host key changed' }).waitFor({ timeout: 20_000 });
    await status().filter({ hasText: 'host key changed' }).waitFor();
    expect(await page.getByRole('dialog').count()).toBe(0);
    const acceptedAfter = (fs.readFileSync(logPath, 'utf8').match(/Accepted publickey/g) ?? []).length;
    expect(acceptedAfter).toBe(acceptedBefore);
    await page.screenshot({ path: path.join(RESULTS_DIR, 'e2e-host-key-changed.png'), fullPage: true });
  });

  it('edits a host (the pin stays for the same endpoint) and removes one after confirmation', async () => {
    const row = page.getByTestId('host-row-rig-sshd');
    await row.getByRole('button', { name: 'Edit' }).click();
    const form = page.getByRole('form', { name: 'Edit host' });
    await form.locator('input[name=name]').fill('rig-renamed');
    await form.getByRole('button', { name: 'Save' }).click();
    const renamed = page.getByTestId('host-row-rig-renamed');
    await renamed.waitFor();
    expect(await renamed.innerText()).toContain(sshd.hostKeyFingerprint);

    // Declining keeps the host; confirming removes it.
    const doomed = page.getByTestId('host-row-changed-key');
    await doomed.getByRole('button', { name: 'Remove' }).click();
    await confirmDialog(page, /^Remove host changed-key\?$/, 'Cancel');
    expect(await doomed.count()).toBe(1);
    await doomed.getByRole('button', { name: 'Remove' }).click();
    await confirmDialog(page, /^Remove host changed-key\?$/, 'Remove');
    await doomed.waitFor({ state: 'detached' });
  });

  it('keeps the chosen theme across a reload', async () => {
    const theme = (): Promise<string | undefined> => page.evaluate(() => document.documentElement.dataset.theme);
    await page.getByRole('combobox', { name: 'Theme' }).selectOption('dark');
    expect(await theme()).toBe('dark');
    await page.keyboard.press('Alt+t'); // cycles system → light → dark → system
    expect(await theme()).toBeUndefined();
    await page.getByRole('combobox', { name: 'Theme' }).selectOption('light');
    await page.reload();
    await status()
      .filter({ hasText: /^connected to / })
      .waitFor({ timeout: 30_000 });
    expect(await theme()).toBe('light');
  });

  if (mode === 'web') {
    it('web mode: opens no session without the secret, and no API socket from a foreign origin', async () => {
      const web = app.web!;
      const token = new URL(web.url).searchParams.get('token')!;
      const trade = (origin: string, body: unknown): Promise<Response> =>
        fetch(`${web.origin}/session`, {
          method: 'POST',
          headers: { origin, 'content-type': 'application/json' },
          body: JSON.stringify(body),
        });
      expect((await trade(web.origin, {})).status).toBe(400);
      expect((await trade('http://evil.example', { token })).status).toBe(403);
      // The printed link stays good while the server runs (test/e2e/webLink.test.ts opens it in browsers).
      const reused = await trade(web.origin, { token });
      expect(reused.status).toBe(200);
      const { session } = (await reused.json()) as { session: string };
      // The app's page keeps the same secret in its origin's storage, and in no cookie.
      expect(await page.evaluate(() => localStorage.getItem('firedeck.webSession'))).toBe(session);
      expect(await app.browser!.context.cookies()).toEqual([]);

      const tryHello = (headers: Record<string, string>, hello: unknown): Promise<string> =>
        new Promise((resolve) => {
          const ws = new WebSocket(`ws://127.0.0.1:${web.port}/api`, { headers });
          ws.once('open', () => ws.send(JSON.stringify(hello)));
          ws.once('message', (data: Buffer) => {
            ws.close();
            resolve(data.toString());
          });
          ws.once('unexpected-response', (_req, res) => resolve(String(res.statusCode)));
          ws.once('close', (code) => resolve(`closed ${code}`));
          ws.once('error', (err) => resolve(`error ${err.message}`));
        });
      expect(await tryHello({ origin: 'http://evil.example' }, { session })).toBe('403');
      expect(await tryHello({ origin: web.origin }, { session: 'forged' })).toBe('closed 4401');
      expect(await tryHello({ origin: web.origin }, { session })).toBe('{"ready":true}');
    });
  }

  if (mode === 'electron') {
    it("Electron: the page has no Node, only the bridge's named methods, and opens no windows", async () => {
      const probe = await page.evaluate(() => {
        const w = window as unknown as Record<string, unknown>;
        const bridge = (w.firedeck ?? {}) as Record<string, unknown>;
        return {
          require: typeof w.require,
          process: typeof w.process,
          bridge: Object.keys(bridge).sort(),
          allFunctions: Object.values(bridge).every((v) => typeof v === 'function'),
          // A file: URL is refused without being handed to the system (an http(s) one would open a browser here).
          opened: window.open('file:///etc/hostname') !== null,
        };
      });
      expect(probe).toMatchObject({ require: 'undefined', process: 'undefined', allFunctions: true, opened: false });
      expect(probe.bridge).toEqual([...appCallNames, 'onEvent'].sort());
    });
  }
});
