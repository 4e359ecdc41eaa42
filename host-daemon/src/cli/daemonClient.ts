import net from 'node:net';
import os from 'node:os';
import { FiredeckError, type RpcErrorObject } from '../../../src/shared/errors';
import { methods, type MethodName, type ParamsOf, type ResultOf } from '../../../src/shared/protocol/methods';
import { LineFramer, encodeFrame } from '../../../src/shared/rpc/framing';
import { sessionHelloFrame } from '../../../src/shared/protocol/session';
import { classifyClientFrame, requestFrame } from '../../../src/shared/rpc/jsonrpc';

/** The host-side CLI's connection to firedeckd: typed calls, results validated against the method schemas. */
export class DaemonClient {
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  private readonly notificationListeners = new Set<(method: string, params: unknown) => void>();

  private constructor(private readonly socket: net.Socket) {
    const framer = new LineFramer();
    socket.on('data', (chunk: Buffer) => {
      for (const ev of framer.push(chunk)) {
        if (ev.type !== 'frame') continue;
        const msg = classifyClientFrame(ev.text);
        if (msg.type === 'success' || msg.type === 'failure') {
          const id = msg.message.id;
          const p = typeof id === 'number' ? this.pending.get(id) : undefined;
          if (!p || typeof id !== 'number') continue;
          this.pending.delete(id);
          if (msg.type === 'success') p.resolve(msg.message.result);
          else p.reject(FiredeckError.fromJSON(msg.message.error as RpcErrorObject));
        } else if (msg.type === 'notification') {
          for (const l of this.notificationListeners) l(msg.message.method, msg.message.params);
        }
      }
    });
    socket.on('close', () => {
      for (const p of this.pending.values())
        p.reject(new FiredeckError('disconnected', 'firedeckd closed the connection'));
      this.pending.clear();
    });
  }

  static connect(socketPath: string): Promise<DaemonClient> {
    return new Promise((resolve, reject) => {
      const socket = net.connect(socketPath);
      socket.once('connect', () => {
        const info = os.userInfo();
        socket.write(sessionHelloFrame({ user: info.username, uid: info.uid }));
        socket.on('error', () => undefined);
        resolve(new DaemonClient(socket));
      });
      socket.once('error', (err: NodeJS.ErrnoException) => {
        reject(unreachable(socketPath, err));
      });
    });
  }

  async call<M extends MethodName>(method: M, params: ParamsOf<M>): Promise<ResultOf<M>> {
    const id = this.nextId++;
    const raw = await new Promise<unknown>((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.socket.write(encodeFrame(requestFrame(id, method, params)));
    });
    const checked = methods[method].result.safeParse(raw);
    if (!checked.success) throw new FiredeckError('internal', `firedeckd answered ${method} with an unexpected result`);
    return checked.data as ResultOf<M>;
  }

  onNotification(listener: (method: string, params: unknown) => void): () => void {
    this.notificationListeners.add(listener);
    return () => this.notificationListeners.delete(listener);
  }

  close(): void {
    this.socket.end();
  }
}

/** The typed error for a daemon socket that cannot be reached, with the fix for the usual causes. */
export function unreachable(socketPath: string, err: NodeJS.ErrnoException): FiredeckError {
  const hint =
    err.code === 'ENOENT' || err.code === 'ECONNREFUSED'
      ? 'Start it with: systemctl start firedeckd'
      : err.code === 'EACCES'
        ? "Add this user to the group 'firedeck'."
        : undefined;
  return new FiredeckError(
    'unavailable',
    `Cannot reach firedeckd at ${socketPath}: ${err.message}`,
    hint ? { hint } : {},
  );
}
