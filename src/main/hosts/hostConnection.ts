import { randomBytes } from 'node:crypto';
import { FiredeckError, isFiredeckError, toAppError } from '../../shared/errors';
import type { HostStatus } from '../../shared/app/contract';
import type { EventEnvelope } from '../../shared/protocol/events';
import type { DaemonInfo } from '../../shared/protocol/daemon';
import { hostCommandLine, type HostCommand } from '../../shared/protocol/hostCommand';
import { isMethodName, methods } from '../../shared/protocol/methods';
import { DaemonClient } from '../rpc/daemonClient';
import type { ExecChannel, ExecOptions, Transport } from '../ssh/transport';
import { stderrReason } from '../channels/stderrReason';

export interface Backoff {
  initialMs: number;
  maxMs: number;
  factor: number;
}

export const DEFAULT_BACKOFF: Backoff = { initialMs: 500, maxMs: 15_000, factor: 2 };

export interface HostConnectionOptions {
  hostId: string;
  /** Opens a fresh transport; rejects with a FiredeckError (host key, auth, network). */
  openTransport: () => Promise<Transport>;
  /** How to run firedeckd on that host, e.g. `firedeckd`. */
  daemonCommand: string;
  onStatus: (status: HostStatus) => void;
  onEvent: (envelope: EventEnvelope) => void;
  backoff?: Backoff;
}

/** How long a call whose link died before its answer waits for the link to come back, to be sent again. */
export const RESEND_WITHIN_MS = 30_000;

/** Errors that no retry can fix: the operator has to act first. */
const FATAL_KINDS = new Set(['host_key_unknown', 'host_key_mismatch', 'auth_failed', 'permission_denied']);

export function backoffDelay(attempt: number, backoff: Backoff): number {
  const base = Math.min(backoff.maxMs, backoff.initialMs * backoff.factor ** Math.max(0, attempt - 1));
  // Jitter keeps many apps from reconnecting to one host in lockstep after it restarts.
  return Math.round(base * (0.75 + Math.random() * 0.25));
}

/**
 * One host's link: transport → `firedeckd dial-stdio` → RPC client → `daemon.info` → event subscription.
 * A link that drops after it worked is re-established with backoff and the subscription renewed.
 */
export class HostConnection {
  private transport: Transport | null = null;
  private rpc: DaemonClient | null = null;
  private rpcChannel: ExecChannel | null = null;
  private retryTimer: NodeJS.Timeout | null = null;
  private wanted = false;
  private generation = 0;
  private current: HostStatus;
  private readonly backoff: Backoff;
  private readonly statusWaiters = new Set<(status: HostStatus) => void>();

  constructor(private readonly options: HostConnectionOptions) {
    this.backoff = options.backoff ?? DEFAULT_BACKOFF;
    this.current = {
      hostId: options.hostId,
      state: 'disconnected',
      info: null,
      error: null,
      attempt: 0,
      nextAttemptAt: null,
    };
  }

  get status(): HostStatus {
    return this.current;
  }

  /** The RPC client of a connected host. */
  client(): DaemonClient {
    if (!this.rpc || this.rpc.isClosed) {
      throw new FiredeckError('unavailable', `Host ${this.options.hostId} is not connected`, {
        hint:
          this.current.state === 'reconnecting'
            ? 'The app is reconnecting; try again in a moment.'
            : 'Connect to the host first.',
      });
    }
    return this.rpc;
  }

  /**
   * Calls the daemon (the renderer's `daemon.call`). A call whose link dies before its answer is sent once more
   * when the link is back (within RESEND_WITHIN_MS): the daemon may or may not have applied it. A mutating call
   * carries an idempotency key drawn here, the same both times, so the daemon applies it at most once and
   * answers the second with the first one's outcome.
   */
  async call(method: string, params: unknown): Promise<unknown> {
    const mutating = isMethodName(method) && methods[method].mutating;
    const options = mutating ? { idempotencyKey: randomBytes(16).toString('base64url') } : {};
    try {
      return await this.client().callByName(method, params, options);
    } catch (err) {
      if (!isFiredeckError(err, 'disconnected') || !this.wanted) throw err;
      try {
        await this.whenConnected(RESEND_WITHIN_MS);
      } catch {
        throw err;
      }
      return this.client().callByName(method, params, options);
    }
  }

  /** Resolves once the link is up again; rejects if it fails, is disconnected, or takes longer than `timeoutMs`. */
  private whenConnected(timeoutMs: number): Promise<void> {
    return new Promise((resolve, reject) => {
      const check = (status: HostStatus): void => {
        if (status.state === 'connected' && this.rpc && !this.rpc.isClosed) {
          done();
          resolve();
        } else if (status.state === 'failed' || status.state === 'disconnected') {
          done();
          reject(new FiredeckError('disconnected', `Host ${this.options.hostId} did not come back`));
        }
      };
      const timer = setTimeout(() => {
        done();
        reject(new FiredeckError('timeout', `Host ${this.options.hostId} did not come back within ${timeoutMs} ms`));
      }, timeoutMs);
      const done = (): void => {
        clearTimeout(timer);
        this.statusWaiters.delete(check);
      };
      this.statusWaiters.add(check);
      check(this.current);
    });
  }

  /** Runs a firedeckd command (console, shell, VNC) on a connected host, on an exec channel of its own. */
  execDaemon(command: HostCommand, options: ExecOptions = {}): Promise<ExecChannel> {
    if (!this.transport || this.current.state !== 'connected') {
      return Promise.reject(new FiredeckError('unavailable', `Host ${this.options.hostId} is not connected`));
    }
    return this.transport.exec(hostCommandLine(this.options.daemonCommand, command), options);
  }

  /** Connects once; rejects with the reason (a host key to confirm, a refused key, …) and stays failed. */
  async connect(): Promise<HostStatus> {
    if (this.current.state === 'connected') return this.current;
    this.wanted = true;
    this.cancelRetry();
    const gen = ++this.generation;
    this.setStatus({ state: 'connecting', error: null, attempt: 0, nextAttemptAt: null });
    try {
      await this.establish(gen);
      return this.current;
    } catch (err) {
      const e = FiredeckError.from(err, 'connection_failed');
      if (gen === this.generation) {
        this.wanted = false;
        this.setStatus({ state: 'failed', info: null, error: toAppError(e) });
      }
      throw e;
    }
  }

  disconnect(): HostStatus {
    this.wanted = false;
    this.generation++;
    this.cancelRetry();
    this.teardown();
    this.setStatus({ state: 'disconnected', info: null, error: null, attempt: 0, nextAttemptAt: null });
    return this.current;
  }

  private async establish(gen: number): Promise<void> {
    this.teardown();
    const transport = await this.options.openTransport();
    if (gen !== this.generation) {
      transport.close();
      throw new FiredeckError('cancelled', 'Connection attempt superseded');
    }
    this.transport = transport;
    let channel: ExecChannel;
    try {
      channel = await transport.exec(hostCommandLine(this.options.daemonCommand, { name: 'dial-stdio' }));
    } catch (err) {
      this.teardown();
      throw err;
    }
    this.rpcChannel = channel;
    let stderr = '';
    channel.stderr.on('data', (chunk: Buffer) => {
      stderr = (stderr + chunk.toString()).slice(-2000);
    });
    const rpc = new DaemonClient(channel.stream, { callTimeoutMs: 60_000 });
    this.rpc = rpc;
    let info: DaemonInfo;
    try {
      info = await Promise.race([
        rpc.call('daemon.info', {}, { timeoutMs: 20_000 }),
        channel.exited.then((exit) => {
          throw new FiredeckError('unavailable', describeDialFailure(stderr, exit.code, transport.where), {
            hint: 'Install firedeckd on the host and start it (systemctl start firedeckd); the SSH user must be in the group firedeck.',
          });
        }),
      ]);
    } catch (err) {
      this.teardown();
      const e = FiredeckError.from(err, 'unavailable');
      if (e.kind === 'disconnected' && stderr.trim()) {
        throw new FiredeckError('unavailable', describeDialFailure(stderr, null, transport.where));
      }
      throw e;
    }
    rpc.onEvent((env) => this.options.onEvent(env));
    try {
      await rpc.call('events.subscribe', {}, { timeoutMs: 20_000 });
    } catch (err) {
      // A daemon without events still serves calls; the UI then refreshes on its own. Any other failure
      // leaves a link whose fleet would silently go stale: it is closed, and the attempt fails.
      if (!isFiredeckError(err, 'method_not_found')) {
        this.teardown();
        throw err;
      }
    }
    // Watched only from here: a link lost while it was being set up fails the attempt (above) instead.
    const lost = (error: FiredeckError | null): void => {
      if (gen !== this.generation) return;
      this.onLinkLost(error ?? new FiredeckError('disconnected', `Connection to ${transport.where} closed`));
    };
    rpc.onClose(lost);
    transport.onClose(lost);
    if (rpc.isClosed) throw new FiredeckError('disconnected', `Connection to ${transport.where} closed`);
    this.setStatus({ state: 'connected', info, error: null, attempt: 0, nextAttemptAt: null });
  }

  private onLinkLost(error: FiredeckError): void {
    // Closing the rest of the link fires the other close listeners: the new generation makes them no-ops.
    this.generation++;
    this.teardown();
    if (!this.wanted) return;
    this.scheduleRetry(1, error);
  }

  private scheduleRetry(attempt: number, error: FiredeckError): void {
    const delay = backoffDelay(attempt, this.backoff);
    const gen = ++this.generation;
    this.setStatus({
      state: 'reconnecting',
      error: toAppError(error),
      attempt,
      nextAttemptAt: new Date(Date.now() + delay).toISOString(),
    });
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      if (gen !== this.generation || !this.wanted) return;
      this.establish(gen).catch((err: unknown) => {
        if (gen !== this.generation) return;
        const e = FiredeckError.from(err, 'connection_failed');
        if (FATAL_KINDS.has(e.kind)) {
          this.wanted = false;
          this.setStatus({ state: 'failed', info: null, error: toAppError(e), nextAttemptAt: null });
        } else {
          this.scheduleRetry(attempt + 1, e);
        }
      });
    }, delay);
  }

  private cancelRetry(): void {
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = null;
  }

  private teardown(): void {
    const { rpc, rpcChannel, transport } = this;
    this.rpc = null;
    this.rpcChannel = null;
    this.transport = null;
    rpc?.close();
    rpcChannel?.close();
    transport?.close();
  }

  private setStatus(patch: Partial<HostStatus>): void {
    this.current = { ...this.current, ...patch };
    this.options.onStatus(this.current);
    for (const waiter of [...this.statusWaiters]) waiter(this.current);
  }
}

function describeDialFailure(stderr: string, code: number | null, where: string): string {
  const line = stderrReason(stderr);
  if (line) return `firedeckd on ${where}: ${line.replace(/^firedeckd dial-stdio: /, '')}`;
  if (code === 127) return `firedeckd is not installed on ${where} (command not found)`;
  return `firedeckd dial-stdio on ${where} exited${code === null ? '' : ` with code ${code}`}`;
}
