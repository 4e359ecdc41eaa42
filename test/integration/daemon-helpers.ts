import { execFileSync } from 'node:child_process';
import net from 'node:net';
import type { DaemonEvent } from '../../src/shared/protocol/events';
import { connectRpc } from '../rig/daemon';

/** Alive and not a zombie (a daemonized QEMU's parent may not reap it at once). */
export { pidAlive } from '../../host-daemon/src/system/processes';

/** A live `events.subscribe` connection that keeps every event it receives. */
export interface EventLog {
  events: DaemonEvent[];
  /** Resolves with the first event (already received or future) that matches; rejects at the deadline. */
  waitFor<E extends DaemonEvent>(pred: (e: DaemonEvent) => e is E, timeoutMs: number, what: string): Promise<E>;
  waitFor(pred: (e: DaemonEvent) => boolean, timeoutMs: number, what: string): Promise<DaemonEvent>;
  close(): void;
}

export async function subscribeEvents(socketPath: string): Promise<EventLog> {
  const events: DaemonEvent[] = [];
  const dropped: string[] = [];
  const waiters = new Set<() => void>();
  const link = await connectRpc(socketPath, { onDropped: (e) => dropped.push(e.message) });
  link.rpc.onEvent((envelope) => {
    events.push(envelope.event);
    for (const w of [...waiters]) w();
  });
  await link.rpc.call('events.subscribe', {});
  const waitFor = (pred: (e: DaemonEvent) => boolean, timeoutMs: number, what: string): Promise<DaemonEvent> =>
    new Promise((resolve, reject) => {
      const check = (): boolean => {
        const hit = events.find(pred);
        if (hit) {
          waiters.delete(check);
          clearTimeout(timer);
          resolve(hit);
          return true;
        }
        return false;
      };
      const timer = setTimeout(() => {
        waiters.delete(check);
        reject(
          new Error(
            `no event ${what} within ${timeoutMs} ms; saw: ${events.map((e) => e.type).join(', ')}` +
              (dropped.length > 0 ? `; dropped: ${dropped.join('; ')}` : ''),
          ),
        );
      }, timeoutMs);
      if (!check()) waiters.add(check);
    });
  return { events, waitFor: waitFor as EventLog['waitFor'], close: () => link.destroy() };
}

/** Connects to a VM's console attach socket and resolves when `pattern` shows up in what the guest writes. */
export function consoleAttach(socketPath: string): Promise<{
  write(text: string): void;
  waitFor(pattern: RegExp, timeoutMs: number): Promise<string>;
  close(): void;
}> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(socketPath);
    let seen = '';
    const waiters = new Set<() => void>();
    socket.on('data', (chunk: Buffer) => {
      seen += chunk.toString('utf8');
      if (seen.length > 1 << 20) seen = seen.slice(-(1 << 19));
      for (const w of [...waiters]) w();
    });
    socket.once('error', reject);
    socket.once('connect', () =>
      resolve({
        write: (text) => socket.write(text),
        waitFor: (pattern, timeoutMs) =>
          new Promise((res, rej) => {
            const check = (): void => {
              const m = pattern.exec(seen);
              if (m) {
                waiters.delete(check);
                clearTimeout(timer);
                res(m[0]);
              }
            };
            const timer = setTimeout(() => {
              waiters.delete(check);
              rej(new Error(`console: no ${pattern} within ${timeoutMs} ms; last output:\n${seen.slice(-1500)}`));
            }, timeoutMs);
            waiters.add(check);
            check();
          }),
        close: () => socket.destroy(),
      }),
    );
  });
}

export function linkExists(name: string): boolean {
  const out = execFileSync('ip', ['-j', 'link', 'show'], { encoding: 'utf8' });
  return (JSON.parse(out) as { ifname: string }[]).some((l) => l.ifname === name);
}

export function linksWithPrefix(prefix: string): string[] {
  const out = execFileSync('ip', ['-j', 'link', 'show'], { encoding: 'utf8' });
  return (JSON.parse(out) as { ifname: string }[]).map((l) => l.ifname).filter((n) => n.startsWith(prefix));
}

/** Removes the network devices a suite's daemon made (bridge and TAPs with the suite's prefix). */
export function removeLinks(prefix: string): void {
  for (const name of linksWithPrefix(prefix)) execFileSync('ip', ['link', 'del', name]);
}
