import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { AppService } from '../app/appService';
import { HostRegistry } from '../hosts/hostRegistry';
import { openLocalStore, type Db } from '../hosts/localStore';
import { webSessionCookie } from '../../shared/app/webWire';
import { explanationPage, safeEqual, startWebServer, type WebServer } from './webServer';

describe('web mode server: the printed link’s token, session cookie, Host and Origin checks', () => {
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

  const login = async (): Promise<string> => {
    const res = await fetch(server.url, { redirect: 'manual' });
    expect(res.status).toBe(303);
    expect(res.headers.get('location')).toBe('/');
    const setCookie = res.headers.get('set-cookie') ?? '';
    expect(setCookie).toMatch(/HttpOnly/);
    expect(setCookie).toMatch(/SameSite=Strict/);
    return setCookie.split(';')[0]!;
  };

  const upgrade = (headers: Record<string, string>): Promise<string> =>
    new Promise((resolve) => {
      const ws = new WebSocket(`ws://127.0.0.1:${server.port}/api`, { headers });
      ws.once('open', () => {
        ws.close();
        resolve('open');
      });
      ws.once('unexpected-response', (_req, res) => resolve(String(res.statusCode)));
      ws.once('error', (err) => resolve(`error ${err.message}`));
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

  it('refuses everything without the token or a session', async () => {
    expect((await fetch(`${origin}/`)).status).toBe(401);
    expect((await fetch(`${origin}/index.html`)).status).toBe(401);
    expect((await fetch(`${origin}/?token=wrong`)).status).toBe(401);
    expect(await upgrade({ origin })).toBe('401');
  });

  it('takes the printed link as often as it is opened, each time for a session that serves the renderer', async () => {
    const first = await login();
    const second = await login();
    const third = await login();
    // Every visit gets in (another tab, a restarted browser, a second browser), and what one got keeps working.
    for (const cookie of [first, second, third]) {
      const page = await fetch(`${origin}/`, { headers: { cookie } });
      expect(page.status).toBe(200);
      expect(await page.text()).toContain('<title>Firedeck</title>');
    }
    // The token carries over any path and other query, and is dropped from where the browser is sent.
    const deep = await fetch(`${server.url}&x=1`.replace('/?', '/index.html?'), { redirect: 'manual' });
    expect(deep.status).toBe(303);
    expect(deep.headers.get('location')).toBe('/index.html?x=1');
  });

  it('answers a stale or wrong link, and a visit without a session, with a page that says which link to open', async () => {
    const stale = `${origin}/?token=${'A'.repeat(43)}`;
    for (const [url, problem] of [
      [stale, 'stale'],
      [`${origin}/?token=`, 'stale'],
      [server.url.slice(0, -1), 'stale'],
      [`${origin}/`, 'no-session'],
      [`${origin}/assets/index.js`, 'no-session'],
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

  it('makes a new token and session each start: the link and cookie of an earlier start get the explanation', async () => {
    const cookie = await login();
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
      // This start's cookie value, renamed for the other port, is no session there either.
      const moved = cookie.replace(`_${server.port}=`, `_${other.port}=`);
      expect((await fetch(`${otherOrigin}/`, { headers: { cookie: moved } })).status).toBe(401);
    } finally {
      await other.close();
      otherDb.close();
    }
  });

  it('exchanges the token for a cookie that then serves the renderer with a CSP', async () => {
    const cookie = await login();
    const page = await fetch(`${origin}/`, { headers: { cookie } });
    expect(page.status).toBe(200);
    expect(await page.text()).toContain('<title>Firedeck</title>');
    expect(page.headers.get('content-security-policy')).toContain("script-src 'self'");
    expect((await fetch(`${origin}/`, { headers: { cookie: `${webSessionCookie(server.port)}=forged` } })).status).toBe(
      401,
    );
  });

  it('does not serve files outside the renderer dir', async () => {
    const cookie = await login();
    for (const p of ['/../secret.txt', '/%2e%2e/secret.txt', '/..%2fsecret.txt']) {
      const res = await fetch(`${origin}${p}`, { headers: { cookie } });
      expect(res.status).toBe(404);
    }
  });

  it('answers paths that are not URLs or hold a NUL with 400, and keeps serving', async () => {
    const cookie = await login();
    const http = await import('node:http');
    const get = (p: string): Promise<number> =>
      new Promise((resolve, reject) => {
        const req = http.request({ host: '127.0.0.1', port: server.port, path: p, headers: { cookie } }, (res) => {
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

  it('names its session cookie after its port, so two instances keep their own sessions', async () => {
    const cookie = await login();
    expect(cookie).toMatch(new RegExp(`^firedeck_session_${server.port}=[A-Za-z0-9_-]{43}$`));
    const other = cookie.replace(`_${server.port}=`, `_${server.port + 1}=`);
    expect((await fetch(`${origin}/`, { headers: { cookie: other } })).status).toBe(401);
  });

  it('refuses a foreign Host header (DNS rebinding) even with a session', async () => {
    const cookie = await login();
    const http = await import('node:http');
    const status = await new Promise<number>((resolve, reject) => {
      const req = http.request(
        { host: '127.0.0.1', port: server.port, path: '/', headers: { cookie, host: `evil.example:${server.port}` } },
        (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        },
      );
      req.once('error', reject);
      req.end();
    });
    expect(status).toBe(403);
  });

  it('opens the API socket only with the session cookie from our own origin, and answers calls on it', async () => {
    const cookie = await login();
    expect(await upgrade({ origin: 'http://evil.example', cookie })).toBe('403');
    expect(await upgrade({ cookie })).toBe('403');
    expect(await upgrade({ origin, cookie: `${webSessionCookie(server.port)}=forged` })).toBe('401');

    const ws = new WebSocket(`ws://127.0.0.1:${server.port}/api`, { headers: { origin, cookie } });
    await new Promise<void>((resolve, reject) => {
      ws.once('open', resolve);
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
