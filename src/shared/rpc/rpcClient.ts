import { FiredeckError } from '../errors';
import { EVENT_NOTIFICATION, EventEnvelope } from '../protocol/events';
import { isMethodName, methods, type MethodName, type ParamsOf, type ResultOf } from '../protocol/methods';
import { LineFramer, MAX_FRAME_BYTES, encodeFrame } from './framing';
import { classifyClientFrame, requestFrame } from './jsonrpc';

export interface RpcClientOptions {
  /** Sends one frame (its newline included) to the daemon. */
  write(frame: string): void;
  /** Deadline of a call that names none; 0 waits as long as the link lives. Default 60 s. */
  callTimeoutMs?: number;
  /** The cap on a frame either way (default MAX_FRAME_BYTES, the daemon's own). */
  maxFrameBytes?: number;
  /**
   * A frame no call can take, dropped: an event that fails its schema, an oversized event, an error for no
   * call. For a log line; the calls are not affected.
   */
  onDropped?(error: FiredeckError): void;
}

export interface CallOptions {
  /** This call's deadline; 0 waits as long as the link lives. */
  timeoutMs?: number;
  /**
   * For a mutating call: the same key on a call sent again (on a new link, after the first died before its
   * answer) gets the first call's outcome, never a second application. The caller draws it at random.
   */
  idempotencyKey?: string;
}

interface Pending {
  method: MethodName;
  resolve(value: unknown): void;
  reject(error: FiredeckError): void;
  timer: ReturnType<typeof setTimeout> | null;
}

const PEER = 'firedeckd';

/**
 * The one JSON-RPC 2.0 client of firedeckd, for any transport: the owner passes `write` and feeds what it
 * reads to `push`, and says `linkClosed` when its link ends. Results and event payloads are parsed with the
 * schemas of `methods` and `EventEnvelope`; params are not (the daemon checks them). Every pending call
 * settles: with its result, the daemon's error, or a typed error of its own (`timeout`, `frame_too_large`
 * for a reply over the frame cap, `disconnected` when the link closes, `internal` for a result that does not
 * match the protocol).
 */
export class RpcClient {
  private readonly pending = new Map<number, Pending>();
  private readonly eventListeners = new Set<(envelope: EventEnvelope) => void>();
  private readonly closeListeners = new Set<(error: FiredeckError) => void>();
  private readonly framer: LineFramer;
  private readonly maxFrameBytes: number;
  private readonly callTimeoutMs: number;
  private nextId = 1;
  private closedWith: FiredeckError | null = null;

  constructor(private readonly options: RpcClientOptions) {
    this.maxFrameBytes = options.maxFrameBytes ?? MAX_FRAME_BYTES;
    this.callTimeoutMs = options.callTimeoutMs ?? 60_000;
    this.framer = new LineFramer(this.maxFrameBytes);
  }

  get isClosed(): boolean {
    return this.closedWith !== null;
  }

  /** Calls a method of the daemon; resolves with the result its schema parsed. */
  call<M extends MethodName>(method: M, params: ParamsOf<M>, options: CallOptions = {}): Promise<ResultOf<M>> {
    return this.send(method, params, options) as Promise<ResultOf<M>>;
  }

  /** Calls a method named at run time (the renderer's `daemon.call`); a name not in `methods` fails at once. */
  callByName(method: string, params: unknown, options: CallOptions = {}): Promise<unknown> {
    if (!isMethodName(method)) {
      return Promise.reject(new FiredeckError('method_not_found', `Method not found: ${method.slice(0, 128)}`));
    }
    return this.send(method, params, options);
  }

  onEvent(listener: (envelope: EventEnvelope) => void): () => void {
    this.eventListeners.add(listener);
    return () => this.eventListeners.delete(listener);
  }

  /** Called once, with the reason, when the link closes (at once if it already has). */
  onClose(listener: (error: FiredeckError) => void): () => void {
    if (this.closedWith) {
      listener(this.closedWith);
      return () => undefined;
    }
    this.closeListeners.add(listener);
    return () => this.closeListeners.delete(listener);
  }

  /** Bytes (or text) read from the link. */
  push(chunk: Uint8Array | string): void {
    if (this.closedWith) return;
    for (const ev of this.framer.push(chunk)) {
      if (ev.type === 'oversized') this.oversized(ev.head);
      else this.frame(ev.text);
    }
  }

  /** The link ended: every pending call fails with `disconnected`, and so does every later call. */
  linkClosed(reason: FiredeckError = new FiredeckError('disconnected', `The connection to ${PEER} closed`)): void {
    if (this.closedWith) return;
    this.closedWith = reason;
    const pending = [...this.pending.values()];
    this.pending.clear();
    for (const p of pending) {
      this.settle(p);
      p.reject(
        new FiredeckError('disconnected', `${p.method}: ${reason.message}`, {
          ...(reason.hint !== undefined ? { hint: reason.hint } : {}),
          cause: reason,
        }),
      );
    }
    const listeners = [...this.closeListeners];
    this.closeListeners.clear();
    for (const l of listeners) l(reason);
  }

  private send(method: MethodName, params: unknown, options: CallOptions): Promise<unknown> {
    if (this.closedWith) return Promise.reject(this.closedWith);
    const id = this.nextId++;
    const frame = encodeFrame(requestFrame(id, method, params, options.idempotencyKey));
    if (frame.length - 1 > this.maxFrameBytes) {
      // The daemon would drop it unread and answer with no id; refuse it here, where the call is known.
      return Promise.reject(
        new FiredeckError('frame_too_large', `${method}: the request is larger than ${this.maxFrameBytes} bytes`, {
          details: { method, maxFrameBytes: this.maxFrameBytes },
        }),
      );
    }
    return new Promise<unknown>((resolve, reject) => {
      const timeoutMs = options.timeoutMs ?? this.callTimeoutMs;
      const timer =
        timeoutMs > 0
          ? setTimeout(() => {
              this.pending.delete(id);
              reject(
                new FiredeckError('timeout', `${method}: no answer from ${PEER} within ${timeoutMs} ms`, {
                  details: { method, timeoutMs },
                }),
              );
            }, timeoutMs)
          : null;
      const pending: Pending = { method, resolve, reject, timer };
      this.pending.set(id, pending);
      try {
        this.options.write(frame);
      } catch (err) {
        this.pending.delete(id);
        this.settle(pending);
        reject(FiredeckError.from(err, 'disconnected'));
      }
    });
  }

  private frame(text: string): void {
    const msg = classifyClientFrame(text);
    if (msg.type === 'invalid') {
      this.dropped(new FiredeckError('internal', `${PEER} sent a frame that is ${msg.reason}`));
      return;
    }
    if (msg.type === 'notification') {
      if (msg.message.method !== EVENT_NOTIFICATION) return;
      const envelope = EventEnvelope.safeParse(msg.message.params);
      if (!envelope.success) {
        this.dropped(mismatch(`an event`, envelope.error.issues));
        return;
      }
      for (const l of [...this.eventListeners]) l(envelope.data);
      return;
    }
    const id = msg.message.id;
    const pending = typeof id === 'number' ? this.take(id) : undefined;
    if (!pending) {
      // A late answer to a call that timed out is expected; an error for no call at all is worth a log line.
      if (msg.type === 'failure' && id === null) this.dropped(FiredeckError.fromJSON(msg.message.error));
      return;
    }
    if (msg.type === 'failure') {
      pending.reject(FiredeckError.fromJSON(msg.message.error));
      return;
    }
    const result = methods[pending.method].result.safeParse(msg.message.result);
    if (result.success) pending.resolve(result.data);
    else pending.reject(mismatch(`its answer to ${pending.method}`, result.error.issues));
  }

  /**
   * A frame over the cap was dropped unread. Its start names the call it answered; one that does not say
   * (not the daemon's framing) fails every pending call, since any of them may be the one left waiting.
   */
  private oversized(head: string): void {
    const error = (what: string): FiredeckError =>
      new FiredeckError('frame_too_large', `${what} from ${PEER} was larger than ${this.maxFrameBytes} bytes`, {
        hint: 'Ask for less at a time.',
        details: { maxFrameBytes: this.maxFrameBytes },
      });
    const keys = leadingScalars(head);
    const id = keys.get('id');
    if (id !== undefined) {
      const pending = /^\d+$/.test(id) ? this.take(Number(id)) : undefined;
      pending?.reject(error(`${pending.method}: the reply`));
      return;
    }
    if (keys.has('method')) {
      this.dropped(error(`A notification ${keys.get('method')!.slice(0, 64)}`));
      return;
    }
    const pending = [...this.pending.keys()].map((k) => this.take(k)!);
    for (const p of pending) p.reject(error(`${p.method}: a reply`));
    if (pending.length === 0) this.dropped(error('A frame'));
  }

  private take(id: number): Pending | undefined {
    const pending = this.pending.get(id);
    if (!pending) return undefined;
    this.pending.delete(id);
    this.settle(pending);
    return pending;
  }

  private settle(pending: Pending): void {
    if (pending.timer) clearTimeout(pending.timer);
    pending.timer = null;
  }

  private dropped(error: FiredeckError): void {
    this.options.onDropped?.(error);
  }
}

function mismatch(what: string, issues: readonly { path: PropertyKey[]; message: string }[]): FiredeckError {
  return new FiredeckError('internal', `${PEER} sent ${what} that does not match the protocol`, {
    hint: 'The app and firedeckd versions may differ; update both to the same release.',
    details: { issues: issues.slice(0, 5).map((i) => `${i.path.map(String).join('.')}: ${i.message}`) },
  });
}

/**
 * The top-level members with plain values at the start of a JSON object, up to its first nested value:
 * `{"jsonrpc":"2.0","id":7,"result":{…` gives jsonrpc and id, as raw JSON text (`"2.0"`, `7`).
 */
function leadingScalars(head: string): Map<string, string> {
  const out = new Map<string, string>();
  const open = /^\s*\{/.exec(head);
  if (!open) return out;
  const member = /\s*"((?:[^"\\]|\\.)*)"\s*:\s*("(?:[^"\\]|\\.)*"|[-+.\w]+)\s*,/y;
  member.lastIndex = open[0].length;
  for (let m = member.exec(head); m; m = member.exec(head)) out.set(m[1]!, m[2]!);
  return out;
}
