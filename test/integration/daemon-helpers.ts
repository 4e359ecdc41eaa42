import { execFileSync } from 'node:child_process';
import net from 'node:net';
import type { AuthSession, AuthSessionState } from '../../src/shared/protocol/auth';
import type { DaemonEvent } from '../../src/shared/protocol/events';
import type { Vm } from '../../src/shared/protocol/vm';
import { connectRpc, startDaemon, type DaemonRig } from '../rig/daemon';
import { installTestImage } from '../rig/testImage';

/** Alive and not a zombie (a daemonized QEMU's parent may not reap it at once). */
export { pidAlive } from '../../host-daemon/src/system/processes';

/**
 * Things that arrive (events, console output) and the checks waiting on them: `until` resolves with a
 * probe's first answer other than undefined, probed now and on every `arrived()`, and rejects at the deadline.
 */
function arrivals(): {
  arrived(): void;
  until<T>(probe: () => T | undefined, timeoutMs: number, failure: () => string): Promise<T>;
} {
  const waiters = new Set<() => void>();
  return {
    arrived: () => {
      for (const w of [...waiters]) w();
    },
    until: (probe, timeoutMs, failure) =>
      new Promise((resolve, reject) => {
        const check = (): void => {
          const hit = probe();
          if (hit === undefined) return;
          waiters.delete(check);
          clearTimeout(timer);
          resolve(hit);
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(failure()));
        }, timeoutMs);
        waiters.add(check);
        check();
      }),
  };
}

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
  const news = arrivals();
  const link = await connectRpc(socketPath, { onDropped: (e) => dropped.push(e.message) });
  link.rpc.onEvent((envelope) => {
    events.push(envelope.event);
    news.arrived();
  });
  await link.rpc.call('events.subscribe', {});
  const waitFor = (pred: (e: DaemonEvent) => boolean, timeoutMs: number, what: string): Promise<DaemonEvent> =>
    news.until(
      () => events.find(pred),
      timeoutMs,
      () =>
        `no event ${what} within ${timeoutMs} ms; saw: ${events.map((e) => e.type).join(', ')}` +
        (dropped.length > 0 ? `; dropped: ${dropped.join('; ')}` : ''),
    );
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
    const output = arrivals();
    socket.on('data', (chunk: Buffer) => {
      seen += chunk.toString('utf8');
      if (seen.length > 1 << 20) seen = seen.slice(-(1 << 19));
      output.arrived();
    });
    socket.once('error', reject);
    socket.once('connect', () =>
      resolve({
        write: (text) => socket.write(text),
        waitFor: (pattern, timeoutMs) =>
          output.until(
            () => pattern.exec(seen)?.[0],
            timeoutMs,
            () => `console: no ${pattern} within ${timeoutMs} ms; last output:\n${seen.slice(-1500)}`,
          ),
        close: () => socket.destroy(),
      }),
    );
  });
}

export function linkExists(name: string): boolean {
  const out = execFileSync('ip', ['-j', 'link', 'show'], { encoding: 'utf8' });
  return (JSON.parse(out) as { ifname: string }[]).some((l) => l.ifname === name);
}

/** The bridge's permanent neighbour entries (address → MAC), as `ip neigh` reports them. */
export function permanentNeighbours(bridge: string): { dst: string; lladdr: string }[] {
  const out = execFileSync('ip', ['-j', 'neigh', 'show', 'dev', bridge, 'nud', 'permanent'], { encoding: 'utf8' });
  return (JSON.parse(out || '[]') as { dst: string; lladdr: string }[]).map(({ dst, lladdr }) => ({ dst, lladdr }));
}

export function linksWithPrefix(prefix: string): string[] {
  const out = execFileSync('ip', ['-j', 'link', 'show'], { encoding: 'utf8' });
  return (JSON.parse(out) as { ifname: string }[]).map((l) => l.ifname).filter((n) => n.startsWith(prefix));
}

/** Removes the network devices a suite's daemon made (bridge and TAPs with the suite's prefix). */
/** Removes a suite's links (`<prefix>…`) and its daemon's guest isolation tables (`firedeck-<prefix>`, nftables). */
export function removeLinks(prefix: string): void {
  for (const name of linksWithPrefix(prefix)) execFileSync('ip', ['link', 'del', name]);
  const tables = execFileSync('nft', ['list', 'tables'], { encoding: 'utf8' });
  for (const family of ['bridge', 'inet']) {
    if (tables.split('\n').includes(`table ${family} firedeck-${prefix}`)) {
      execFileSync('nft', ['delete', 'table', family, `firedeck-${prefix}`]);
    }
  }
}

/** A daemon of the suite's own (bridge `<prefix>br0` on `cidr`, TAPs `<prefix>tap<n>`) with the test image installed. */
export async function startSuiteDaemon(
  prefix: string,
  cidr: string,
  env: Record<string, string> = {},
): Promise<DaemonRig> {
  removeLinks(prefix);
  const daemon = await startDaemon({
    env: { FIREDECK_BRIDGE: `${prefix}br0`, FIREDECK_CIDR: cidr, FIREDECK_DEVICE_PREFIX: prefix, ...env },
  });
  await installTestImage(daemon.stateDir);
  return daemon;
}

/** Destroys every VM of a suite's daemon, stops it and removes the suite's links (a daemon that never started too). */
export async function stopSuiteDaemon(daemon: DaemonRig | undefined, prefix: string): Promise<void> {
  if (daemon) {
    for (const vm of await daemon.call('vm.list', {}).catch(() => [] as Vm[])) {
      await daemon.call('vm.destroy', { id: vm.id }).catch(() => undefined);
    }
    await daemon.stop();
  }
  removeLinks(prefix);
}

/**
 * Waits for auth session `id` to reach `state` by its events (never polling); an end other than `state` fails
 * at once, with the session's error and the tail of the daemon's log.
 */
export async function reachSessionState(
  events: EventLog,
  daemon: DaemonRig,
  id: string,
  state: AuthSessionState,
  timeoutMs: number,
): Promise<AuthSession> {
  const ended: readonly AuthSessionState[] = ['completed', 'failed', 'timeout', 'cancelled'];
  const event = (await events.waitFor(
    (e) =>
      e.type === 'auth.session' &&
      e.session.id === id &&
      (e.session.state === state || ended.includes(e.session.state)),
    timeoutMs,
    `auth ${id} → ${state}`,
  )) as Extract<DaemonEvent, { type: 'auth.session' }>;
  if (event.session.state !== state) {
    throw new Error(
      `auth ${id} ended ${event.session.state} instead of reaching ${state}: ${JSON.stringify(event.session.error)}\n` +
        daemon.log().slice(-4000),
    );
  }
  return event.session;
}
