import net from 'node:net';
import { FiredeckError } from '../../../../src/shared/errors';

interface Pending {
  command: string;
  resolve: (value: unknown) => void;
  reject: (err: Error) => void;
}

/**
 * A QMP session on QEMU's monitor socket. QEMU serves one monitor client at a time, so the daemon opens a
 * session per operation and closes it afterwards. `closed` resolves when QEMU closes the socket, which is
 * how a power-down is observed without polling (QEMU exits, the socket closes).
 *
 * Each command carries an `id`, which QEMU echoes in its reply: a call that timed out is dropped, and a reply
 * that comes after its deadline is recognised as its own and discarded, never taken for the next command's.
 */
export class QmpSession {
  readonly closed: Promise<void>;
  private readonly socket: net.Socket;
  private buffer = '';
  /** The greeting (QEMU's first line) until it has come. */
  private greeting: Pending | null = null;
  /** Calls waiting for their reply, by the `id` they were sent with. */
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private isClosed = false;

  private constructor(socket: net.Socket) {
    this.socket = socket;
    this.closed = new Promise((resolve) => {
      socket.on('close', () => {
        this.isClosed = true;
        const waiting = [...(this.greeting ? [this.greeting] : []), ...this.pending.values()];
        this.greeting = null;
        this.pending.clear();
        for (const p of waiting) {
          if (p.command === 'quit') p.resolve({});
          else p.reject(new FiredeckError('unavailable', `QMP socket closed during ${p.command}`));
        }
        resolve();
      });
    });
    socket.on('error', () => undefined);
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
  }

  /** Connects, reads the greeting and leaves capabilities negotiation done. */
  static async open(socketPath: string, timeoutMs = 5000): Promise<QmpSession> {
    const socket = net.connect(socketPath);
    const session = await new Promise<QmpSession>((resolve, reject) => {
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new FiredeckError('timeout', `QMP ${socketPath}: no greeting within ${timeoutMs} ms`));
      }, timeoutMs);
      socket.once('error', (err) => {
        clearTimeout(timer);
        reject(new FiredeckError('unavailable', `QMP ${socketPath}: ${err.message}`, { cause: err }));
      });
      const s = new QmpSession(socket);
      // The greeting is the first line; a pseudo-command resolves on it.
      s.greeting = {
        command: '(greeting)',
        resolve: () => {
          clearTimeout(timer);
          resolve(s);
        },
        reject: (err) => {
          clearTimeout(timer);
          reject(err);
        },
      };
    });
    await session.execute('qmp_capabilities', undefined, timeoutMs);
    return session;
  }

  execute(command: string, args?: Record<string, unknown>, timeoutMs = 5000): Promise<unknown> {
    if (this.isClosed) {
      if (command === 'quit') return Promise.resolve({});
      return Promise.reject(new FiredeckError('unavailable', `QMP socket closed before ${command}`));
    }
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        // Dropped: its reply, should it still come, matches no call.
        this.pending.delete(id);
        reject(new FiredeckError('timeout', `QMP ${command}: no answer within ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.set(id, {
        command,
        resolve: (v) => {
          clearTimeout(timer);
          resolve(v);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      });
      this.socket.write(
        JSON.stringify(args === undefined ? { execute: command, id } : { execute: command, arguments: args, id }) +
          '\r\n',
      );
    });
  }

  close(): void {
    this.socket.destroy();
  }

  private onData(chunk: Buffer): void {
    this.buffer += chunk.toString('utf8');
    let nl: number;
    while ((nl = this.buffer.indexOf('\n')) !== -1) {
      const line = this.buffer.slice(0, nl).trim();
      this.buffer = this.buffer.slice(nl + 1);
      if (line === '') continue;
      let msg: Record<string, unknown>;
      try {
        msg = JSON.parse(line) as Record<string, unknown>;
      } catch {
        continue;
      }
      if ('event' in msg) continue;
      let pending: Pending | undefined;
      if ('QMP' in msg) {
        pending = this.greeting ?? undefined;
        this.greeting = null;
      } else if (typeof msg.id === 'number') {
        pending = this.pending.get(msg.id);
        this.pending.delete(msg.id);
      }
      // A reply to a call that timed out (or to none) is dropped.
      if (!pending) continue;
      const err = msg.error as { class?: string; desc?: string } | undefined;
      if (err) pending.reject(new FiredeckError('internal', `QMP ${pending.command}: ${err.class}: ${err.desc}`));
      else pending.resolve('QMP' in msg ? msg.QMP : msg.return);
    }
  }
}

/** One command in its own session. */
export async function qmpCommand(socketPath: string, command: string, timeoutMs = 5000): Promise<unknown> {
  const session = await QmpSession.open(socketPath, timeoutMs);
  try {
    return await session.execute(command, undefined, timeoutMs);
  } finally {
    session.close();
  }
}
