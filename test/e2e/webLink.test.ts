import fs from 'node:fs';
import path from 'node:path';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launchChromium, type ChromiumRig } from '../rig/chromium';
import { REPO_ROOT, startWebMode, type WebMode } from './support/webMode';

/**
 * Web mode's printed link in real browsers (Debian's Chromium through playwright-core): it works until the
 * server stops — opened twice, after a reload, after the browser is closed and started again, and in a second
 * browser at the same time — and a stale link shows a page that says what to do. Only the web-mode server runs
 * (`node out/main/web.js`, no daemon, no VMs).
 */
describe('web mode: the printed link, in several browsers', () => {
  let web: WebMode | undefined;
  const browsers: ChromiumRig[] = [];

  beforeAll(async () => {
    web = await startWebMode();
  });

  afterAll(async () => {
    for (const b of browsers) await b.close().catch(() => undefined);
    await web?.stop();
  });

  const browser = async (): Promise<ChromiumRig> => {
    const b = await launchChromium();
    browsers.push(b);
    return b;
  };

  /**
   * The page shows the app, and its session really is one: a call on the API socket (which needs our Origin and,
   * as its first frame, the session secret the page keeps in its origin's storage) is answered.
   */
  const expectApp = async (page: Page): Promise<void> => {
    await page.getByRole('button', { name: 'Fleet' }).waitFor({ timeout: 30_000 });
    expect(new URL(page.url()).searchParams.has('token')).toBe(false);
    const answer = await page.evaluate(
      () =>
        new Promise<string>((resolve) => {
          const ws = new WebSocket(`ws://${location.host}/api`);
          ws.onopen = () => {
            ws.send(JSON.stringify({ session: localStorage.getItem('firedeck.webSession') }));
            ws.send(JSON.stringify({ id: 1, name: 'app.info', params: {} }));
          };
          ws.onmessage = (m) => {
            const frame = JSON.parse(String(m.data)) as { id?: number };
            if (frame.id !== 1) return;
            ws.close();
            resolve(String(m.data));
          };
          ws.onerror = () => resolve('socket refused');
        }),
    );
    expect(JSON.parse(answer)).toMatchObject({ id: 1, envelope: { ok: true, value: { mode: 'web' } } });
  };

  it('prints the link once, with how long it works', () => {
    const out = web!.output();
    expect(out.split(web!.url).length - 1).toBe(1);
    expect(out).toContain('It works until web mode stops, in any browser, after reloads and a browser restart');
  });

  it('opens twice in one browser and survives a reload', async () => {
    const first = await browser();
    const page = await first.newPage();
    const res = await page.goto(web!.url);
    expect(res?.status()).toBe(200);
    await expectApp(page);
    await page.reload();
    await expectApp(page);
    // The same link again, in another tab.
    const again = await first.newPage();
    await again.goto(web!.url);
    await expectApp(again);
  });

  it('opens again after the browser was closed and started again, and in a second browser beside it', async () => {
    // Close every browser so far: what it held (its storage) is gone with its profile.
    for (const b of browsers.splice(0)) await b.close();
    const restarted = await browser();
    const page = await restarted.newPage();
    await page.goto(web!.url);
    await expectApp(page);

    const second = await browser();
    const other = await second.newPage();
    await other.goto(web!.url);
    await expectApp(other);
    // Both stay in: neither took the other's session away.
    await page.reload();
    await expectApp(page);
    // The session is in each browser's storage for web mode's origin, and in no cookie.
    for (const b of [restarted, second]) {
      expect(await b.context.cookies()).toEqual([]);
      const { origins } = await b.context.storageState();
      const stored = origins.find((o) => o.origin === web!.origin)?.localStorage ?? [];
      expect(stored.map((e) => e.name)).toEqual(['firedeck.webSession']);
    }
  });

  it('shows a stale link, and a visit without the link, a page that says what to do', async () => {
    const fresh = await browser();
    const page = await fresh.newPage();
    // A link of an earlier start of web mode on this port: the token differs.
    const stale = new URL(web!.url);
    stale.searchParams.set('token', 'Zm9yZ290dGVuLWxpbmstb2YtYW4tZWFybGllci1zdGFydA');
    const res = await page.goto(stale.toString());
    expect(res?.status()).toBe(401);
    await page.getByRole('heading', { name: 'Open the link that web mode printed' }).waitFor();
    const text = await page.locator('body').innerText();
    expect(text).toContain('from an earlier start of web mode');
    expect(text).toContain('npm start');
    expect(text).toContain('works until');
    expect(text).not.toContain(new URL(web!.url).searchParams.get('token')!);
    fs.mkdirSync(path.join(REPO_ROOT, 'test-results'), { recursive: true });
    await page.screenshot({ path: path.join(REPO_ROOT, 'test-results/e2e-web-stale-link.png') });

    // The app's address without the token (a bookmark, history) in a browser with no session: the page finds
    // none in its storage and loads the explanation.
    await page.goto(`${web!.origin}/`);
    await page.getByRole('heading', { name: 'Open the link that web mode printed' }).waitFor({ timeout: 30_000 });
    expect(new URL(page.url()).pathname).toBe('/no-session');
    expect(await page.locator('body').innerText()).toContain('has no session with this web mode server');
    // And the printed link still gets in from there.
    await page.goto(web!.url);
    await expectApp(page);
  });

  it('sends a tab whose server was started again (same port, new token) to that page, and the old link is stale', async () => {
    const rig = await browser();
    const page = await rig.newPage();
    await page.goto(web!.url);
    await expectApp(page);
    const oldLink = web!.url;
    const port = web!.port;
    await web!.stop();
    web = await startWebMode({ port });
    expect(web.url).not.toBe(oldLink);
    // The open tab finds its session gone once its socket is refused, and shows what to do, on its own.
    await page.getByRole('heading', { name: 'Open the link that web mode printed' }).waitFor({ timeout: 30_000 });
    expect(await page.locator('body').innerText()).toContain('or the server was started again');
    // The link printed by the earlier start is stale now; the new one gets in.
    const res = await page.goto(oldLink);
    expect(res?.status()).toBe(401);
    expect(await page.locator('body').innerText()).toContain('from an earlier start of web mode');
    await page.goto(web.url);
    await expectApp(page);
  });
});
