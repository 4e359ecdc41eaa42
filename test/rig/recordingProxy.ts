import http from 'node:http';
import type net from 'node:net';

/** One request the proxy saw: `CONNECT host:port` or `GET http://…`, and the User-Agent it carried. */
export interface ProxiedRequest {
  line: string;
  userAgent: string | null;
}

/**
 * An HTTP proxy for browser VMs that forwards nothing: it records each request's target (`CONNECT host:443`, or
 * the absolute URL of a plain request) with its User-Agent, and answers 502. This machine reaches no provider, so
 * what a test can prove is that the guest's traffic was *sent to the proxy*, for the right host, by whom.
 */
export interface RecordingProxy {
  url: string;
  requests(): ProxiedRequest[];
  /**
   * Resolves with the first request (already seen or to come) whose line matches `line` and, if given, whose
   * User-Agent matches `userAgent`; rejects at the deadline.
   */
  waitFor(line: RegExp, timeoutMs: number, userAgent?: RegExp): Promise<ProxiedRequest>;
  close(): Promise<void>;
}

export async function startRecordingProxy(options: { host: string; port: number }): Promise<RecordingProxy> {
  const seen: ProxiedRequest[] = [];
  const waiters = new Set<() => void>();
  const record = (line: string, userAgent: string | undefined): void => {
    seen.push({ line, userAgent: userAgent ?? null });
    for (const w of [...waiters]) w();
  };
  // Every socket, CONNECT ones too (the server stops tracking those): a destroyed guest never closes its end.
  const sockets = new Set<net.Socket>();
  const server = http.createServer((req, res) => {
    record(`${req.method ?? '?'} ${req.url ?? ''}`, req.headers['user-agent']);
    res.writeHead(502, { 'content-type': 'text/plain' }).end('firedeck test proxy: no upstream\n');
  });
  server.on('connection', (socket: net.Socket) => {
    // A guest's browser resets what the proxy refused, and a destroyed guest vanishes: neither is the test's error.
    socket.on('error', () => undefined);
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  server.on('connect', (req: http.IncomingMessage, socket: net.Socket) => {
    record(`CONNECT ${req.url ?? ''}`, req.headers['user-agent']);
    socket.on('error', () => undefined);
    socket.end('HTTP/1.1 502 Bad Gateway\r\ncontent-length: 0\r\n\r\n');
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => resolve());
  });
  return {
    url: `http://${options.host}:${options.port}`,
    requests: () => [...seen],
    waitFor: (line, timeoutMs, userAgent) =>
      new Promise((resolve, reject) => {
        const check = (): void => {
          const hit = seen.find((r) => line.test(r.line) && (!userAgent || userAgent.test(r.userAgent ?? '')));
          if (hit === undefined) return;
          waiters.delete(check);
          clearTimeout(timer);
          resolve(hit);
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          const saw = seen.map((r) => `${r.line} (${r.userAgent ?? 'no User-Agent'})`).join(', ') || 'none';
          reject(
            new Error(
              `no proxy request matching ${String(line)} ${String(userAgent ?? '')} in ${timeoutMs} ms; saw: ${saw}`,
            ),
          );
        }, timeoutMs);
        waiters.add(check);
        check();
      }),
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const socket of sockets) socket.destroy();
      }),
  };
}
