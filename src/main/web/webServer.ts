import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { WebSocketServer, type WebSocket } from 'ws';
import {
  WEB_API_PATH,
  WEB_NO_SESSION_CLOSE,
  WEB_NO_SESSION_PATH,
  WEB_SESSION_PATH,
  WebCallFrame,
  WebHelloFrame,
  WebSessionRequest,
  type WebServerFrame,
  type WebSessionAnswer,
} from '../../shared/app/webWire';
import type { AppEvent } from '../../shared/app/contract';
import type { AppService } from '../app/appService';
import { RENDERER_CSP } from '../app/csp';

export interface WebServerOptions {
  service: AppService;
  /** The built renderer (`out/renderer`). */
  rendererDir: string;
  /** 0 picks a free port. */
  port: number;
}

export interface WebServer {
  port: number;
  /**
   * The link to print: it carries this server's token and works until the server stops, as often and in as many
   * browsers as it is opened (each visit's page trades it for the session secret).
   */
  url: string;
  close(): Promise<void>;
}

const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.woff2': 'font/woff2',
  '.json': 'application/json',
  '.map': 'application/json',
};

/** Largest call frame a web session may send (a VNC or shell write is at most 1 MiB of base64). */
const MAX_WS_PAYLOAD = 2 * 1024 * 1024;

/** Largest body of the token trade (`{"token":"…"}` is about 60 bytes). */
const MAX_SESSION_BODY = 1024;

/** How long an API socket may take to present the session before it is closed. */
const HELLO_TIMEOUT_MS = 10_000;

/**
 * Web mode: the renderer and the app contract served on 127.0.0.1 only, with our own Host header on every request
 * (so DNS rebinding gets nothing). The renderer's files are public (they hold no secret); what acts needs the
 * session: the token trade (`POST /session`) needs our own Origin and the printed link's token, and the API
 * socket our own Origin and, as its first frame, the session secret the trade answered.
 *
 * No cookie is used: cookies are not scoped by port, so any other listener on 127.0.0.1 that the browser visits
 * would receive one. The page keeps the secret in its origin's storage, which is (ARCHITECTURE.md, "Web mode").
 *
 * The token and the session secret are random per server start and good until the server stops: the printed link
 * survives reloads, a browser restart and a second browser, and a secret or link of an earlier start matches
 * nothing. Both are compared in constant time; the token appears nowhere but in `url`, the secret only in the
 * trade's answer. A wrong or stale link, or a tab without a session, gets a page that says which link to open.
 */
export async function startWebServer(options: WebServerOptions): Promise<WebServer> {
  const rendererRoot = path.resolve(options.rendererDir);
  if (!fs.existsSync(path.join(rendererRoot, 'index.html'))) {
    throw new Error(`web mode: no built renderer in ${rendererRoot}; run: npx electron-vite build`);
  }
  const token = crypto.randomBytes(32).toString('base64url');
  // What the token is traded for: one secret per server start, so opening the link again (another tab, a
  // browser restarted, a second browser) adds no state, and a secret kept from an earlier start matches nothing.
  const session = crypto.randomBytes(32).toString('base64url');
  let port = 0;

  const hostAllowed = (req: http.IncomingMessage): boolean =>
    req.headers.host === `127.0.0.1:${port}` || req.headers.host === `localhost:${port}`;
  const originAllowed = (req: http.IncomingMessage): boolean =>
    req.headers.origin === `http://127.0.0.1:${port}` || req.headers.origin === `http://localhost:${port}`;

  const server = http.createServer((req, res) => {
    try {
      handleRequest(req, res);
    } catch {
      // A request this server cannot make sense of must never take web mode (and its SSH links) down.
      if (!res.headersSent) deny(res, 400, 'Bad request');
      else res.destroy();
    }
  });
  const handleRequest = (req: http.IncomingMessage, res: http.ServerResponse): void => {
    const url = requestUrl(req);
    if (url === null) return deny(res, 400, 'Bad request');
    if (!hostAllowed(req)) return deny(res, 403, 'Forbidden: unexpected Host header');
    if (url.pathname === WEB_SESSION_PATH) return tradeToken(req, res);
    if (req.method !== 'GET' && req.method !== 'HEAD') return deny(res, 405, 'Method not allowed');
    const offered = url.searchParams.get('token');
    // A page opened with the right token is served as any other; its script trades the token and drops it from
    // the address bar. A wrong one (an earlier start's, or cut short) gets the explanation straight away.
    if (offered !== null && !safeEqual(offered, token)) return explain(res, 'stale', req.method === 'HEAD');
    if (url.pathname === WEB_NO_SESSION_PATH) return explain(res, 'no-session', req.method === 'HEAD');
    serveFile(rendererRoot, url.pathname, req, res);
  };

  /** `POST /session` from our own origin with the printed link's token: answers the session secret. */
  const tradeToken = (req: http.IncomingMessage, res: http.ServerResponse): void => {
    if (req.method !== 'POST') return deny(res, 405, 'Method not allowed');
    // A page of another origin (another port on 127.0.0.1 included) must not trade a token it got hold of.
    if (!originAllowed(req)) return deny(res, 403, 'Forbidden: unexpected Origin');
    if (!(req.headers['content-type'] ?? '').startsWith('application/json')) {
      return deny(res, 415, 'Unsupported media type: send application/json');
    }
    readBody(req, MAX_SESSION_BODY, (body) => {
      if (body === null) return deny(res, 413, 'Request too large');
      let offer: WebSessionRequest;
      try {
        offer = WebSessionRequest.parse(JSON.parse(body));
      } catch {
        return deny(res, 400, 'Bad request: send {"token": "<the printed link\'s token>"}');
      }
      if (!safeEqual(offer.token, token)) return deny(res, 401, "Unauthorized: not this web mode server's link");
      const answer: WebSessionAnswer = { session };
      const text = JSON.stringify(answer);
      res.writeHead(200, {
        'Content-Type': 'application/json',
        'Content-Length': Buffer.byteLength(text),
        'Cache-Control': 'no-store',
        'Cross-Origin-Resource-Policy': 'same-origin',
      });
      res.end(text);
    });
  };

  const wss = new WebSocketServer({ noServer: true, maxPayload: MAX_WS_PAYLOAD });
  server.on('upgrade', (req, socket, head) => {
    const url = requestUrl(req);
    const refuse = (status: number, text: string): void => {
      socket.end(`HTTP/1.1 ${status} ${text}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
    };
    socket.on('error', () => undefined);
    if (url === null) return refuse(400, 'Bad Request');
    if (url.pathname !== WEB_API_PATH) return refuse(404, 'Not Found');
    if (!hostAllowed(req) || !originAllowed(req)) return refuse(403, 'Forbidden');
    wss.handleUpgrade(req, socket, head, (ws) => awaitHello(ws, session, () => serveSession(ws, options.service)));
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, '127.0.0.1', () => resolve());
  });
  const addr = server.address();
  port = typeof addr === 'object' && addr !== null ? addr.port : 0;

  return {
    port,
    url: `http://127.0.0.1:${port}/?token=${token}`,
    close: async () => {
      for (const ws of wss.clients) ws.terminate();
      await new Promise<void>((resolve) => wss.close(() => resolve()));
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/**
 * An API socket's first frame must present the session secret, within `HELLO_TIMEOUT_MS`; anything else (a call
 * first, a wrong or earlier start's secret, a binary or malformed frame, silence) closes it with
 * `WEB_NO_SESSION_CLOSE` before any call is read. Then `ready` is sent and `serve` takes the socket over.
 */
function awaitHello(ws: WebSocket, session: string, serve: () => void): void {
  const noSession = (): void => ws.close(WEB_NO_SESSION_CLOSE, 'no session');
  const timer = setTimeout(noSession, HELLO_TIMEOUT_MS);
  ws.on('error', () => undefined);
  ws.once('close', () => clearTimeout(timer));
  ws.once('message', (data, isBinary) => {
    clearTimeout(timer);
    let hello: WebHelloFrame;
    try {
      if (isBinary) throw new Error('binary hello');
      hello = WebHelloFrame.parse(JSON.parse(data.toString()));
    } catch {
      return noSession();
    }
    if (!safeEqual(hello.session, session)) return noSession();
    serve();
    const ready: WebServerFrame = { ready: true };
    ws.send(JSON.stringify(ready));
  });
}

function serveSession(ws: WebSocket, service: AppService): void {
  const sessionId = crypto.randomUUID();
  const send = (frame: WebServerFrame): void => {
    if (ws.readyState === ws.OPEN) ws.send(JSON.stringify(frame));
  };
  const emit = (event: AppEvent): void => send({ event });
  const unsubscribe = service.onBroadcast(emit);
  ws.on('message', (data, isBinary) => {
    if (isBinary) return;
    let frame: WebCallFrame;
    try {
      frame = WebCallFrame.parse(JSON.parse(data.toString()));
    } catch {
      ws.close(1008, 'malformed frame');
      return;
    }
    void service
      .dispatch(frame.name, frame.params, { sessionId, emit })
      .then((envelope) => send({ id: frame.id, envelope }));
  });
  ws.on('close', () => {
    unsubscribe();
    service.endSession(sessionId);
  });
}

/** The request's body as text, or null once it grows past `limit` bytes (the rest is not read). */
function readBody(req: http.IncomingMessage, limit: number, done: (body: string | null) => void): void {
  const chunks: Buffer[] = [];
  let size = 0;
  let over = false;
  req.on('data', (chunk: Buffer) => {
    if (over) return;
    size += chunk.length;
    if (size > limit) {
      over = true;
      done(null);
      return;
    }
    chunks.push(chunk);
  });
  req.on('end', () => {
    if (!over) done(Buffer.concat(chunks).toString('utf8'));
  });
  req.on('error', () => undefined);
}

function serveFile(root: string, pathname: string, req: http.IncomingMessage, res: http.ServerResponse): void {
  let rel: string;
  try {
    rel = decodeURIComponent(pathname);
  } catch {
    return deny(res, 400, 'Bad path');
  }
  if (rel.includes('\0')) return deny(res, 400, 'Bad path');
  if (rel === '/' || rel === '') rel = '/index.html';
  const file = path.resolve(root, '.' + rel);
  if (!file.startsWith(root + path.sep)) return deny(res, 404, 'Not found');
  fs.stat(file, (err, stat) => {
    if (err || !stat.isFile()) return deny(res, 404, 'Not found');
    res.writeHead(200, {
      'Content-Type': CONTENT_TYPES[path.extname(file)] ?? 'application/octet-stream',
      'Content-Length': stat.size,
      'Content-Security-Policy': RENDERER_CSP,
      'X-Content-Type-Options': 'nosniff',
      'Referrer-Policy': 'no-referrer',
      'Cache-Control': 'no-store',
      // Pages of other origins (other ports on 127.0.0.1 too) may not load them as scripts or images.
      'Cross-Origin-Resource-Policy': 'same-origin',
    });
    if (req.method === 'HEAD') return res.end();
    // A file that went away after the stat ends this response, not the server.
    fs.createReadStream(file)
      .on('error', () => res.destroy())
      .pipe(res);
  });
}

/** The request's URL, or null when it is not one (e.g. `//`, which no browser of ours sends). */
function requestUrl(req: http.IncomingMessage): URL | null {
  try {
    return new URL(req.url ?? '/', 'http://127.0.0.1');
  } catch {
    return null;
  }
}

/** Why a browser gets the explanation page instead of the app. */
export type LinkProblem = 'stale' | 'no-session';

/** The explanation page's CSP: no script, nothing loaded, its own inline style only. */
const EXPLAIN_CSP =
  "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/**
 * The page a browser shows for a link this server did not print (a mistyped token, or one of an earlier start
 * of web mode) or for a visit without a session (a browser that was closed, another browser): what happened and
 * which link to open. It names no token.
 */
export function explanationPage(problem: LinkProblem): string {
  const what =
    problem === 'stale'
      ? 'This link is not the one this web mode server printed: it is from an earlier start of web mode (each ' +
        'start prints a new one, and a link stops working when its server stops), or it was not copied whole.'
      : 'This browser has no session with this web mode server yet (or it was closed since, or the server was ' +
        'started again).';
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Firedeck web mode: open the printed link</title>
<style>body{font:15px/1.5 system-ui,sans-serif;max-width:42em;margin:4em auto;padding:0 1em;color:#222}code{background:#eee;padding:0 .25em}</style>
</head>
<body>
<h1>Open the link that web mode printed</h1>
<p data-problem="${problem}">${what}</p>
<p>To get in: in the terminal where <code>npm start</code> (or <code>node out/main/web.js</code>) runs, open the
most recent line <code>Firedeck web mode: http://127.0.0.1:&lt;port&gt;/?token=…</code>. That link works until
that server stops, as often as you open it, in any browser, after reloads and a browser restart.</p>
<p>If web mode is not running, start it again with <code>npm start</code> (or <code>FIREDECK_WEB=1 npm start</code>):
it prints a new link.</p>
</body>
</html>
`;
}

function explain(res: http.ServerResponse, problem: LinkProblem, headOnly: boolean): void {
  const body = explanationPage(problem);
  res.writeHead(401, {
    'Content-Type': 'text/html; charset=utf-8',
    'Content-Length': Buffer.byteLength(body),
    'Content-Security-Policy': EXPLAIN_CSP,
    'X-Content-Type-Options': 'nosniff',
    'Referrer-Policy': 'no-referrer',
    'Cache-Control': 'no-store',
  });
  res.end(headOnly ? undefined : body);
}

function deny(res: http.ServerResponse, status: number, text: string): void {
  res.writeHead(status, { 'Content-Type': 'text/plain; charset=utf-8', 'Cache-Control': 'no-store' });
  res.end(text + '\n');
}

/**
 * Constant-time string comparison. Both sides are hashed first, so that neither the comparison's time nor an
 * early length check tells anything about the secret (`timingSafeEqual` needs equal lengths).
 */
export function safeEqual(a: string, b: string): boolean {
  const ah = crypto.createHash('sha256').update(a).digest();
  const bh = crypto.createHash('sha256').update(b).digest();
  return crypto.timingSafeEqual(ah, bh);
}
