import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { launchChromium, type ChromiumRig } from '../rig/chromium';
import { startWebMode, type WebMode } from './support/webMode';

interface Seen {
  url: string;
  headers: http.IncomingHttpHeaders;
}

/**
 * Web mode's session is not shared with other ports (issue 13 item 7). Cookies are not scoped by port, so a
 * session kept in one would reach any other listener on 127.0.0.1 that the browser visits (a dev server a
 * terminal link leads to). Here a second HTTP listener on another 127.0.0.1 port records everything the
 * browser sends it after it used web mode, in Debian's Chromium: none of it is the link's token or the page's
 * session secret, and replaying it to web mode opens no session.
 */
describe('web mode: another 127.0.0.1 port gets no session', () => {
  let web: WebMode | undefined;
  let rig: ChromiumRig | undefined;
  let other: http.Server | undefined;
  const seen: Seen[] = [];
  let otherOrigin = '';
  let nextSeen: (() => void) | null = null;

  beforeAll(async () => {
    web = await startWebMode();
    rig = await launchChromium();
    other = http.createServer((req, res) => {
      seen.push({ url: req.url ?? '', headers: req.headers });
      res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' });
      res.end('<!doctype html><title>another listener</title><p>some dev server</p>');
      nextSeen?.();
    });
    await new Promise<void>((resolve) => other!.listen(0, '127.0.0.1', resolve));
    otherOrigin = `http://127.0.0.1:${(other.address() as AddressInfo).port}`;
  });

  afterAll(async () => {
    await rig?.close().catch(() => undefined);
    await new Promise<void>((resolve) => (other ? other.close(() => resolve()) : resolve()));
    await web?.stop();
  });

  it('sends the other listener neither the token nor the session secret, and what it saw opens no session', async () => {
    const page = await rig!.newPage();
    await page.goto(web!.url);
    await page.getByRole('button', { name: 'Fleet' }).waitFor({ timeout: 30_000 });
    // Everything this browser holds for web mode's origin that could be a secret: its cookies and storage.
    const stored = await page.evaluate(() => [...Object.values(localStorage), ...Object.values(sessionStorage)]);
    const cookies = (await rig!.context.cookies(web!.origin)).map((c) => c.value);
    const token = new URL(web!.url).searchParams.get('token')!;
    const secrets = [token, ...stored, ...cookies].filter((s) => s.length >= 16);
    expect(secrets.length).toBeGreaterThan(1);

    // The other port, opened as a terminal link opens one (a new tab, noopener) and typed into a tab.
    const popup = page.context().waitForEvent('page');
    const visited = new Promise<void>((resolve) => (nextSeen = resolve));
    await page.evaluate((url) => window.open(url, '_blank', 'noopener,noreferrer'), `${otherOrigin}/from-a-link`);
    await (await popup).waitForLoadState();
    await visited;
    const typed = await rig!.newPage();
    await typed.goto(`${otherOrigin}/typed`);
    expect(seen.map((s) => s.url)).toEqual(expect.arrayContaining(['/from-a-link', '/typed']));

    for (const request of seen) {
      const everything = `${request.url}\n${JSON.stringify(request.headers)}`;
      for (const secret of secrets) expect(everything).not.toContain(secret);
    }

    // Whatever the other listener saw, replayed to web mode's API socket from web mode's own origin (the worst
    // case: a local process forges the Origin), gets no answer to a call.
    for (const request of seen) {
      const headers: Record<string, string> = { origin: web!.origin };
      if (request.headers.cookie) headers.cookie = request.headers.cookie;
      expect(await replay(web!.port, headers)).not.toBe('answered');
    }
  });
});

/** An API socket with `headers` that makes one call: 'answered' if it got an answer, else how it ended. */
function replay(port: number, headers: Record<string, string>): Promise<string> {
  return new Promise((resolve) => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/api`, { headers });
    ws.once('open', () => ws.send(JSON.stringify({ id: 1, name: 'app.info', params: {} })));
    ws.on('message', (data: Buffer) => {
      const frame = JSON.parse(data.toString()) as { id?: number; envelope?: { ok?: boolean } };
      if (frame.id === 1 && frame.envelope?.ok === true) {
        ws.close();
        resolve('answered');
      }
    });
    ws.once('unexpected-response', (_req, res) => resolve(`refused ${res.statusCode}`));
    ws.once('close', (code) => resolve(`closed ${code}`));
    ws.once('error', (err) => resolve(`error ${err.message}`));
  });
}
