import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { AppService } from '../app/appService';
import { HostRegistry } from '../hosts/hostRegistry';
import { openLocalStore, type Db } from '../hosts/localStore';
import { WEB_NO_SESSION_CLOSE } from '../../shared/app/webWire';
import { explanationPage, safeEqual, startWebServer, type WebServer } from './webServer';

describe('web mode server: the printed link’s token, the session on the API socket, Host and Origin checks', () => {
  let dir: string;
  let db: Db;
  let server: WebServer;
  let origin: string;

  beforeEach(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'firedeck-web-'));
    const rendererDir = path.join(dir, 'renderer');
    fs.mkdirSync(rendererDir);
    fs.writeFileSync(path.join(rendererDir, 'index.html'), '<!doctype html><title>Firedeck</title>');
    fs.writeFileSync(path.join(dir, 'secret.txt'), 'outside the renderer');
    db = openLocalStore(path.join(dir, 'data'));
    const service = new AppService({ mode: 'web', registry: new HostRegistry(db), localDaemonCommand: null });
    server = await startWebServer({ service, rendererDir, port: 0 });
    origin = `http://127.0.0.1:${server.port}`;
  });

  afterEach(async () => {
    await server.close();
    db.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  const tokenOf = (url: string): string => new URL(url).searchParams.get('token')!;

  /** What the page does with the printed link: `POST /session` from its own origin. */
  const trade = (
    body: string,
    headers: Record<string, string> = { origin, 'content-type': 'application/json' },
    at = origin,
  ): Promise<Response> => fetch(`${at}/session`, { method: 'POST', headers, body });

  /** The printed link's token traded for the session secret, as the page does. */
  const login = async (): Promise<string> => {
    const res = await trade(JSON.stringify({ token: tokenOf(server.url) }));
    expect(res.status).toBe(200);
    expect(res.headers.get('set-cookie')).toBeNull();
    expect(res.headers.get('cache-control')).toBe('no-store');
    const { session } = (await res.json()) as { session: string };
    expect(session).toMatch(/^[A-Za-z0-9_-]{43}$/);
    return session;
  };

  /** Whether the API socket's upgrade is accepted ('open') or refused (its status). */
  const upgrade = (headers: Record<string, string>, port = server.port): Promise<string> =>
    new Promise((resolve) => {
      const ws = new WebSocket(`ws://127.0.0.1:${port}/api`, { headers });
      ws.once('open', () => {
        ws.close();
        resolve('open');
      });
      ws.once('unexpected-response', (_req, res) => resolve(String(res.statusCode)));
      ws.once('error', (err) => resolve(`error ${err.message}`));
    });

  /**
   * An API socket from our origin whose first frame is `first`, then a call: 'answered' when the call got its
   * answer, else how the socket ended (`closed <code>`).
   */
  const present = (first: unknown, port = server.port, headers = { origin }): Promise<string> =>
    new Promise((resolve) => {
      const ws = new WebSocket(`ws://127.0.0.1:${port}/api`, { headers });
      ws.once('open', () => {
        ws.send(JSON.stringify(first));
        ws.send(JSON.stringify({ id: 7, name: 'app.info', params: {} }));
      });
      ws.on('message', (data: Buffer) => {
        const frame = JSON.parse(data.toString()) as { id?: number; envelope?: { ok: boolean } };
        if (frame.id !== 7) return;
        ws.close();
        resolve(frame.envelope?.ok ? 'answered' : 'refused call');
      });
      ws.once('unexpected-response', (_req, res) => resolve(String(res.statusCode)));
      ws.once('close', (code) => resolve(`closed ${code}`));
    });

  it('compares secrets in constant time whatever their lengths', () => {
    expect(safeEqual('abc', 'abc')).toBe(true);
    expect(safeEqual('abc', 'abd')).toBe(false);
    expect(safeEqual('abc', 'abcd')).toBe(false);
    expect(safeEqual('', '')).toBe(true);
    expect(safeEqual('', 'a')).toBe(false);
  });

  it('explains both problems in words, naming the command that prints a link', () => {
    expect(explanationPage('stale')).toMatch(/earlier start of web mode/);
    expect(explanationPage('no-session')).toMatch(/no session with this web mode server/);
  });

  it('prints a 127.0.0.1 URL with a long random token', () => {
    expect(server.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/\?token=[A-Za-z0-9_-]{43}$/);
  });

  it('serves the renderer’s public files to anyone on our Host, but opens no session without the secret', async () => {
    expect((await fetch(`${origin}/`)).status).toBe(200);
    expect((await fetch(`${origin}/?token=wrong`)).status).toBe(401);
    expect(await present({ session: '' })).toBe(`closed ${WEB_NO_SESSION_CLOSE}`);
  });

  it('takes the printed link as often as it is opened, each time trading it for the one session secret', async () => {
    for (let i = 0; i < 3; i++) {
      const page = await fetch(server.url, { redirect: 'manual' });
      expect(page.status).toBe(200);
      expect(page.headers.get('set-cookie')).toBeNull();
      expect(await page.text()).toContain('<title>Firedeck</title>');
    }
    // Every visit gets in (another tab, a restarted browser, a second browser), and what one got keeps working.
    const first = await login();
    const second = await login();
    expect(second).toBe(first);
    expect(await present({ session: first })).toBe('answered');
    expect(await present({ session: second })).toBe('answered');
    // The token is taken on any path, beside other query.
    const deep = await fetch(`${server.url}&x=1`.replace('/?', '/index.html?'), { redirect: 'manual' });
    expect(deep.status).toBe(200);
  });

  it('trades the token only by POST from our own origin, as JSON, for the right token', async () => {
    const token = tokenOf(server.url);
    const json = { 'content-type': 'application/json' };
    const otherPort = `http://127.0.0.1:${server.port + 1}`;
    const cases: [string, Promise<Response>, number][] = [
      ['missing token', trade('{}'), 400],
      ['empty token', trade(JSON.stringify({ token: '' })), 401],
      ['wrong token', trade(JSON.stringify({ token: 'A'.repeat(43) })), 401],
      ['the session secret as token', trade(JSON.stringify({ token: await login() })), 401],
      ['no Origin', trade(JSON.stringify({ token }), json), 403],
      ['another 127.0.0.1 port’s page', trade(JSON.stringify({ token }), { ...json, origin: otherPort }), 403],
      ['a foreign site', trade(JSON.stringify({ token }), { ...json, origin: 'http://evil.example' }), 403],
      ['a form post', trade(`token=${token}`, { origin, 'content-type': 'application/x-www-form-urlencoded' }), 415],
      ['not JSON', trade('token', { origin, 'content-type': 'application/json' }), 400],
      ['too large', trade(JSON.stringify({ token, pad: 'x'.repeat(4096) })), 413],
      ['GET', fetch(`${origin}/session?token=${token}`), 405],
    ];
    for (const [what, res, status] of cases) {
      const r = await res;
      expect({ what, status: r.status }).toEqual({ what, status });
      expect(r.headers.get('set-cookie')).toBeNull();
      expect(await r.text()).not.toContain(await login());
    }
  });

  it('answers a stale or wrong link, and a visit without a session, with a page that says which link to open', async () => {
    const stale = `${origin}/?token=${'A'.repeat(43)}`;
    for (const [url, problem] of [
      [stale, 'stale'],
      [`${origin}/?token=`, 'stale'],
      [server.url.slice(0, -1), 'stale'],
      [`${origin}/no-session`, 'no-session'],
    ] as const) {
      const res = await fetch(url, { redirect: 'manual' });
      expect(res.status).toBe(401);
      expect(res.headers.get('content-type')).toBe('text/html; charset=utf-8');
      expect(res.headers.get('set-cookie')).toBeNull();
      // Nothing runs on it: no script at all.
      expect(res.headers.get('content-security-policy')).toMatch(/^default-src 'none'/);
      const html = await res.text();
      expect(html).toContain(`data-problem="${problem}"`);
      expect(html).toContain('Open the link that web mode printed');
      expect(html).toContain('npm start');
      expect(html).toContain('works until');
      expect(html).not.toContain('<script');
      // The page never shows a token, the right one or the one offered.
      expect(html).not.toContain(new URL(server.url).searchParams.get('token')!);
      expect(html).not.toContain('A'.repeat(43));
    }
    const head = await fetch(stale, { method: 'HEAD' });
    expect(head.status).toBe(401);
    expect(await head.text()).toBe('');
  });

  it('makes a new token and session each start: the link and secret of an earlier start are refused', async () => {
    const session = await login();
    const otherDb = openLocalStore(path.join(dir, 'data2'));
    const other = await startWebServer({
      service: new AppService({ mode: 'web', registry: new HostRegistry(otherDb), localDaemonCommand: null }),
      rendererDir: path.join(dir, 'renderer'),
      port: 0,
    });
    try {
      expect(new URL(other.url).searchParams.get('token')).not.toBe(new URL(server.url).searchParams.get('token'));
      const otherOrigin = `http://127.0.0.1:${other.port}`;
      const staleLink = server.url.replace(origin, otherOrigin);
      const res = await fetch(staleLink, { redirect: 'manual' });
      expect(res.status).toBe(401);
      expect(await res.text()).toContain('data-problem="stale"');
      const staleTrade = await fetch(`${otherOrigin}/session`, {
        method: 'POST',
        headers: { origin: otherOrigin, 'content-type': 'application/json' },
        body: JSON.stringify({ token: tokenOf(server.url) }),
      });
      expect(staleTrade.status).toBe(401);
      // A secret kept from an earlier start (a tab left open, what its storage holds) is no session there.
      expect(await present({ session }, other.port, { origin: otherOrigin })).toBe(`closed ${WEB_NO_SESSION_CLOSE}`);
    } finally {
      await other.close();
      otherDb.close();
    }
  });

  it('serves the renderer with a CSP, to our own origin only, and sets no cookie', async () => {
    const page = await fetch(server.url);
    expect(page.status).toBe(200);
    expect(await page.text()).toContain('<title>Firedeck</title>');
    expect(page.headers.get('content-security-policy')).toContain("script-src 'self'");
    expect(page.headers.get('cross-origin-resource-policy')).toBe('same-origin');
    expect(page.headers.get('set-cookie')).toBeNull();
  });

  it('does not serve files outside the renderer dir', async () => {
    for (const p of ['/../secret.txt', '/%2e%2e/secret.txt', '/..%2fsecret.txt']) {
      const res = await fetch(`${origin}${p}`);
      expect(res.status).toBe(404);
    }
  });

  it('answers paths that are not URLs or hold a NUL with 400, and keeps serving', async () => {
    const http = await import('node:http');
    const get = (p: string): Promise<number> =>
      new Promise((resolve, reject) => {
        const req = http.request({ host: '127.0.0.1', port: server.port, path: p }, (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        });
        req.once('error', reject);
        req.end();
      });
    expect(await get('//')).toBe(400);
    expect(await get('/%00')).toBe(400);
    expect(await get('/index.html%00.js')).toBe(400);
    expect(await get('/%E0%A4%A')).toBe(400);
    expect(await get('/')).toBe(200);
  });

  it('refuses a foreign Host header (DNS rebinding), to the token trade too', async () => {
    const http = await import('node:http');
    const status = await new Promise<number>((resolve, reject) => {
      const req = http.request(
        {
          host: '127.0.0.1',
          port: server.port,
          path: '/session',
          method: 'POST',
          headers: { origin, 'content-type': 'application/json', host: `evil.example:${server.port}` },
        },
        (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        },
      );
      req.once('error', reject);
      req.end(JSON.stringify({ token: tokenOf(server.url) }));
    });
    expect(status).toBe(403);
  });

  it('opens the API socket only from our own origin, and serves it only after the session secret', async () => {
    const session = await login();
    // Origin is checked on the upgrade: none, a foreign site, or a page on another 127.0.0.1 port.
    expect(await upgrade({ origin: 'http://evil.example' })).toBe('403');
    expect(await upgrade({})).toBe('403');
    expect(await upgrade({ origin: `http://127.0.0.1:${server.port + 1}` })).toBe('403');
    expect(await upgrade({ origin })).toBe('open');
    const refused = `closed ${WEB_NO_SESSION_CLOSE}`;
    // Missing: a call first, an empty or absent secret, a malformed frame.
    expect(await present({ id: 1, name: 'app.info', params: {} })).toBe(refused);
    expect(await present({ session: '' })).toBe(refused);
    expect(await present({})).toBe(refused);
    expect(await present('hello')).toBe(refused);
    // Wrong: a forged secret, or the link's token presented as if it were the secret.
    expect(await present({ session: 'A'.repeat(43) })).toBe(refused);
    expect(await present({ session: tokenOf(server.url) })).toBe(refused);
    expect(await present({ session })).toBe('answered');

    const ws = new WebSocket(`ws://127.0.0.1:${server.port}/api`, { headers: { origin } });
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => ws.send(JSON.stringify({ session })));
      ws.once('message', (data: Buffer) => {
        expect(JSON.parse(data.toString())).toEqual({ ready: true });
        resolve();
      });
      ws.once('error', reject);
    });
    const answer = (frame: unknown): Promise<unknown> =>
      new Promise((resolve) => {
        ws.once('message', (data: Buffer) => resolve(JSON.parse(data.toString())));
        ws.send(JSON.stringify(frame));
      });
    expect(await answer({ id: 1, name: 'app.info', params: {} })).toEqual({
      id: 1,
      envelope: { ok: true, value: { mode: 'web', version: expect.any(String) } },
    });
    expect(
      await answer({
        id: 2,
        name: 'hosts.add',
        params: { name: 'x', address: 'bad host!', user: 'root', auth: { type: 'agent' } },
      }),
    ).toMatchObject({
      id: 2,
      envelope: { ok: false, error: { kind: 'invalid_params' } },
    });
    expect(await answer({ id: 3, name: 'no.such.call', params: {} })).toMatchObject({
      id: 3,
      envelope: { ok: false, error: { kind: 'method_not_found' } },
    });
    ws.close();
  });
});
