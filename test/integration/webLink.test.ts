import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import NodeWebSocket from 'ws';
import { FiredeckError } from '../../src/shared/errors';
import { AppService } from '../../src/main/app/appService';
import { HostRegistry } from '../../src/main/hosts/hostRegistry';
import { openLocalStore, type Db } from '../../src/main/hosts/localStore';
import { startWebServer, type WebServer } from '../../src/main/web/webServer';
import type { AppClient, AppLink } from '../../src/renderer/src/api/appClient';
import { webSocketClient } from '../../src/renderer/src/api/webSocketClient';
import { makeTempDir } from '../rig/tmp';

/**
 * The renderer's web-mode client against the real web-mode server: what the page is told when its socket
 * drops and comes back, and that it presents its session secret on every socket it opens. (Node 20 has no
 * WebSocket of its own: `ws`'s client stands in for the browser's, sending the Origin a browser would.)
 */
describe('web mode: the page’s link to main', () => {
  let dir: string;
  let db: Db;
  let server: WebServer;
  const sockets: NodeWebSocket[] = [];
  let client: AppClient;
  const links: AppLink[] = [];
  let linkWaiters: (() => void)[] = [];
  const nextLink = (): Promise<void> => new Promise((resolve) => linkWaiters.push(resolve));

  beforeAll(async () => {
    dir = makeTempDir('web-link');
    const rendererDir = path.join(dir, 'renderer');
    fs.mkdirSync(rendererDir);
    fs.writeFileSync(path.join(rendererDir, 'index.html'), '<!doctype html><title>Firedeck</title>');
    db = openLocalStore(path.join(dir, 'data'));
    const service = new AppService({ mode: 'web', registry: new HostRegistry(db), localDaemonCommand: null });
    server = await startWebServer({ service, rendererDir, port: 0 });
    const origin = `http://127.0.0.1:${server.port}`;
    const login = await fetch(`${origin}/session`, {
      method: 'POST',
      headers: { origin, 'content-type': 'application/json' },
      body: JSON.stringify({ token: new URL(server.url).searchParams.get('token') }),
    });
    const { session } = (await login.json()) as { session: string };
    class BrowserLikeWebSocket extends NodeWebSocket {
      constructor(url: string) {
        super(url, { headers: { origin } });
        sockets.push(this);
      }
    }
    (globalThis as { WebSocket?: unknown }).WebSocket = BrowserLikeWebSocket;
    client = webSocketClient(
      { protocol: 'http:', host: `127.0.0.1:${server.port}` },
      { session: () => Promise.resolve(session) },
    );
    client.onLink!((link) => {
      links.push(link);
      const waiters = linkWaiters;
      linkWaiters = [];
      for (const w of waiters) w();
    });
  });

  afterAll(async () => {
    delete (globalThis as { WebSocket?: unknown }).WebSocket;
    await server?.close();
    db?.close();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('answers calls, says "lost" once when the socket drops (failing what was pending), then "restored"', async () => {
    expect(await client.call('hosts.list', {})).toEqual([]);
    expect(links).toEqual([]);

    const lost = nextLink();
    const pending = client.call('hosts.statuses', {});
    sockets.at(-1)!.terminate();
    await lost;
    expect(links).toEqual(['lost']);
    // Its answer could not have come in the same turn as the drop: it fails, and is not left hanging.
    const err = await pending.then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(FiredeckError);
    expect((err as FiredeckError).kind).toBe('disconnected');

    await nextLink();
    expect(links).toEqual(['lost', 'restored']);
    expect(await client.call('hosts.list', {})).toEqual([]);
  });

  it('a second drop is reported again, and a call made while down goes out once the link is back', async () => {
    const lost = nextLink();
    sockets.at(-1)!.terminate();
    await lost;
    const whileDown = client.call('hosts.list', {});
    await nextLink();
    expect(links).toEqual(['lost', 'restored', 'lost', 'restored']);
    expect(await whileDown).toEqual([]);
  });

  it('tells the page its session is gone when the server refuses the secret it presents', async () => {
    let gone!: () => void;
    const told = new Promise<void>((resolve) => (gone = resolve));
    const stale = webSocketClient(
      { protocol: 'http:', host: `127.0.0.1:${server.port}` },
      { session: () => Promise.resolve('A'.repeat(43)), onSessionGone: () => gone() },
    );
    const call = stale.call('hosts.list', {}).then(
      () => 'answered',
      (e: unknown) => (e as FiredeckError).kind,
    );
    await told;
    expect(await call).toBe('disconnected');

    let none!: () => void;
    const toldNone = new Promise<void>((resolve) => (none = resolve));
    webSocketClient(
      { protocol: 'http:', host: `127.0.0.1:${server.port}` },
      { session: () => Promise.resolve(null), onSessionGone: () => none() },
    );
    await toldNone;
  });
});
