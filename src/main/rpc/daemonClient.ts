import type { Duplex } from 'node:stream';
import { FiredeckError, type RpcErrorObject } from '../../shared/errors';
import { LineFramer, encodeFrame } from '../../shared/rpc/framing';
import { classifyClientFrame, requestFrame } from '../../shared/rpc/jsonrpc';
import { methods, type MethodName, type ParamsOf, type ResultOf } from '../../shared/protocol/methods';
import { EVENT_NOTIFICATION, EventEnvelope } from '../../shared/protocol/events';

interface Pending {
  method: MethodName;
  resolve: (value: unknown) => void;
  reject: (err: FiredeckError) => void;
  timer: NodeJS.Timeout | null;
}

export interface DaemonClientOptions {
  /** Per-call deadline; long-running methods pass their own. */
  callTimeoutMs?: number;
}

/**
 * Typed JSON-RPC 2.0 client for firedeckd over any duplex stream (`firedeckd dial-stdio` on an exec channel,
 * or a unix socket). Params are checked before sending and results after receiving, with the shared schemas.
 */
export class DaemonClient {
  private readonly pending = new Map<number, Pending>();
  private readonly eventListeners = new Set<(envelope: EventEnvelope) => void>();
  private readonly closeListeners = new Set<(error: FiredeckError) => void>();
  private readonly framer = new LineFramer();
  private nextId = 1;
  private closedWith: FiredeckError | null = null;
  private readonly callTimeoutMs: number;

  constructor(
    private readonly stream: Duplex,
    options: DaemonClientOptions = {},
  ) {
    this.callTimeoutMs = options.callTimeoutMs ?? 60_000;
    stream.on('data', (chunk: Buffer | string) => this.onData(chunk));
    stream.on('error', (err: Error) => this.shutdown(FiredeckError.from(err, 'disconnected')));
    stream.on('close', () => this.shutdown(new FiredeckError('disconnected', 'The daemon connection closed')));
    stream.on('end', () => this.shutdown(new FiredeckError('disconnected', 'The daemon connection ended')));
  }

  get isClosed(): boolean {
    return this.closedWith !== null;
  }

  call<M extends MethodName>(
    method: M,
    params: ParamsOf<M>,
    options: { timeoutMs?: number } = {},
  ): Promise<ResultOf<M>> {
    if (this.closedWith) return Promise.reject(this.closedWith);
    const def = methods[method];
    const checked = def.params.safeParse(params);
    if (!checked.success) {
      return Promise.reject(
        new FiredeckError(
          'invalid_params',
          `Invalid params for ${method}: ${checked.error.issues[0]?.message ?? 'invalid'}`,
        ),
      );
    }
    const id = this.nextId++;
    return new Promise<ResultOf<M>>((resolve, reject) => {
      const timeoutMs = options.timeoutMs ?? this.callTimeoutMs;
      const timer =
        timeoutMs > 0
          ? setTimeout(() => {
              this.pending.delete(id);
              reject(new FiredeckError('timeout', `${method}: no answer from the daemon within ${timeoutMs} ms`));
            }, timeoutMs)
          : null;
      this.pending.set(id, {
        method,
        resolve: resolve as (value: unknown) => void,
        reject,
        timer,
      });
      this.stream.write(encodeFrame(requestFrame(id, method, params)));
    });
  }

  /** Calls a method named at run time (the renderer's `daemon.call`); unknown names fail like the daemon would. */
  callByName(method: string, params: unknown, options: { timeoutMs?: number } = {}): Promise<unknown> {
    if (!Object.prototype.hasOwnProperty.call(methods, method)) {
      return Promise.reject(new FiredeckError('method_not_found', `Method not found: ${method.slice(0, 128)}`));
    }
    return this.call(method as MethodName, params as never, options);
  }

  onEvent(listener: (envelope: EventEnvelope) => void): () => void {
    this.eventListeners.add(listener);
    return () => this.eventListeners.delete(listener);
  }

  onClose(listener: (error: FiredeckError) => void): () => void {
    if (this.closedWith) {
      listener(this.closedWith);
      return () => undefined;
    }
    this.closeListeners.add(listener);
    return () => this.closeListeners.delete(listener);
  }

  close(): void {
    this.shutdown(new FiredeckError('disconnected', 'The daemon connection was closed'));
    this.stream.destroy();
  }

  private onData(chunk: Buffer | string): void {
    for (const ev of this.framer.push(chunk)) {
      if (ev.type === 'oversized') continue;
      const msg = classifyClientFrame(ev.text);
      if (msg.type === 'notification') {
        if (msg.message.method !== EVENT_NOTIFICATION) continue;
        const envelope = EventEnvelope.safeParse(msg.message.params);
        if (envelope.success) for (const l of this.eventListeners) l(envelope.data);
        continue;
      }
      if (msg.type === 'invalid') continue;
      const id = msg.message.id;
      if (typeof id !== 'number') continue;
      const pending = this.pending.get(id);
      if (!pending) continue;
      this.pending.delete(id);
      if (pending.timer) clearTimeout(pending.timer);
      if (msg.type === 'failure') {
        pending.reject(FiredeckError.fromJSON(msg.message.error as RpcErrorObject));
        continue;
      }
      const result = methods[pending.method].result.safeParse(msg.message.result);
      if (result.success) pending.resolve(result.data);
      else {
        pending.reject(
          new FiredeckError('internal', `The daemon's answer to ${pending.method} does not match the protocol`, {
            hint: 'The app and firedeckd versions may differ; update both to the same release.',
            details: { issues: result.error.issues.slice(0, 5).map((i) => `${i.path.join('.')}: ${i.message}`) },
          }),
        );
      }
    }
  }

  private shutdown(error: FiredeckError): void {
    if (this.closedWith) return;
    this.closedWith = error;
    for (const p of this.pending.values()) {
      if (p.timer) clearTimeout(p.timer);
      p.reject(new FiredeckError('disconnected', `${p.method}: ${error.message}`, { hint: error.hint }));
    }
    this.pending.clear();
    for (const l of this.closeListeners) l(error);
    this.closeListeners.clear();
  }
}
