import { ChannelPortInbound, type ChannelPortClosed } from '../../shared/app/channelPort';
import type { AppEnvelope, AppError, AppParams } from '../../shared/app/contract';
import type { ChannelOutput } from '../app/appService';

/**
 * Main's end of one channel's MessagePort, with the message listener receiving the message itself. Node's
 * `worker_threads` MessagePort is one as it is; Electron's MessagePortMain goes through `fromMessagePortMain`.
 */
export interface ChannelPortEnd {
  postMessage(message: unknown): void;
  start(): void;
  close(): void;
  on(event: 'message', listener: (data: unknown) => void): unknown;
  on(event: 'close', listener: () => void): unknown;
}

/** The part of Electron's MessagePortMain used here: its message listener gets an event carrying `data`. */
export interface MessagePortMainLike {
  postMessage(message: unknown): void;
  start(): void;
  close(): void;
  on(event: 'message', listener: (event: { data: unknown }) => void): unknown;
  on(event: 'close', listener: () => void): unknown;
}

export function fromMessagePortMain(port: MessagePortMainLike): ChannelPortEnd {
  return {
    postMessage: (message) => port.postMessage(message),
    start: () => port.start(),
    close: () => port.close(),
    on(event: 'message' | 'close', listener: ((data: unknown) => void) | (() => void)): unknown {
      if (event === 'message') return port.on('message', (e) => (listener as (data: unknown) => void)(e.data));
      return port.on('close', listener as () => void);
    },
  };
}

/** What a port may do to its channel, bound to the window's session (the broker checks ownership). */
export interface ChannelControl {
  write(channelId: string, bytes: Uint8Array): void;
  ack(channelId: string, bytes: number): void;
  resize(channelId: string, cols: number, rows: number): void;
  close(channelId: string): void;
}

type ChannelCall = 'channels.write' | 'channels.ack' | 'channels.resize' | 'channels.close';

/**
 * A ChannelControl on the app's own calls, so a port's requests pass the same validation and session check
 * as web mode's. Failures (a channel that ended meanwhile) are not the port's concern and are dropped.
 */
export function dispatchChannelControl(
  dispatch: (name: ChannelCall, params: AppParams<ChannelCall>) => Promise<AppEnvelope<unknown>>,
): ChannelControl {
  const run = <N extends ChannelCall>(name: N, params: AppParams<N>): void => {
    dispatch(name, params).catch(() => undefined);
  };
  return {
    write: (channelId, bytes) =>
      run('channels.write', {
        channelId,
        data: Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64'),
        encoding: 'base64',
      }),
    ack: (channelId, bytes) => run('channels.ack', { channelId, bytes }),
    resize: (channelId, cols, rows) => run('channels.resize', { channelId, cols, rows }),
    close: (channelId) => run('channels.close', { channelId }),
  };
}

interface PortBinding {
  port: ChannelPortEnd | null;
  /** Output or the end that came before the port was attached. */
  pending: Uint8Array[];
  closedWith: { error: AppError | null } | null;
  /** The renderer's end went away; waiting only for the broker to report the channel closed. */
  abandoned: boolean;
}

/**
 * One window's channel ports. Output goes out as bare `Uint8Array` messages; writes, acks, resizes and closes
 * come in, each validated; a message that fails validation is reported and dropped, the channel stays open.
 * Flow control is the broker's: it pauses a stream until acks arrive, so nothing here buffers without bound.
 */
export class ChannelPorts implements ChannelOutput {
  private readonly bindings = new Map<string, PortBinding>();
  private disposed = false;

  constructor(
    private readonly control: ChannelControl,
    private readonly onRejected: (channelId: string, reason: string) => void = () => undefined,
  ) {}

  /** Binds main's end of a newly opened channel's port; the other end goes to the window. */
  attach(channelId: string, port: ChannelPortEnd): void {
    const b = this.binding(channelId);
    if (!b || b.port || b.abandoned) {
      port.close();
      return;
    }
    b.port = port;
    port.on('message', (data) => this.receive(channelId, b, data));
    port.on('close', () => this.remoteClosed(channelId, b));
    port.start();
    const pending = b.pending;
    b.pending = [];
    for (const chunk of pending) port.postMessage(chunk);
    if (b.closedWith) this.finish(channelId, b, b.closedWith.error);
  }

  /** Channel output, as the broker delivers it. */
  data(channelId: string, chunk: Uint8Array): void {
    const b = this.binding(channelId);
    if (!b || b.abandoned) return;
    // An exactly sized copy: structured cloning a view sends its whole backing buffer, and Node's pooled
    // Buffers share theirs with unrelated data.
    const bytes = new Uint8Array(chunk);
    if (b.port) b.port.postMessage(bytes);
    else b.pending.push(bytes);
  }

  /** The broker reports the channel ended; the renderer hears why, then main closes its end. */
  closed(channelId: string, error: AppError | null): void {
    const b = this.binding(channelId);
    if (!b) return;
    if (b.abandoned) this.bindings.delete(channelId);
    else if (b.port) this.finish(channelId, b, error);
    else b.closedWith = { error };
  }

  /** The window is gone: close every port. Its channels end through the broker's closeOwnedBy. */
  closeAll(): void {
    this.disposed = true;
    for (const b of this.bindings.values()) {
      b.abandoned = true;
      b.port?.close();
    }
    this.bindings.clear();
  }

  private binding(channelId: string): PortBinding | null {
    if (this.disposed) return null;
    let b = this.bindings.get(channelId);
    if (!b) {
      b = { port: null, pending: [], closedWith: null, abandoned: false };
      this.bindings.set(channelId, b);
    }
    return b;
  }

  private receive(channelId: string, b: PortBinding, data: unknown): void {
    if (b.abandoned || this.bindings.get(channelId) !== b) return;
    const parsed = ChannelPortInbound.safeParse(data);
    if (!parsed.success) {
      this.onRejected(channelId, parsed.error.issues[0]?.message ?? 'invalid message');
      return;
    }
    const msg = parsed.data;
    try {
      if (msg.type === 'write') this.control.write(channelId, msg.data);
      else if (msg.type === 'ack') this.control.ack(channelId, msg.bytes);
      else if (msg.type === 'resize') this.control.resize(channelId, msg.cols, msg.rows);
      else this.control.close(channelId);
    } catch (err) {
      // The channel may have ended between the message and now; the close message is on its way.
      this.onRejected(channelId, err instanceof Error ? err.message : String(err));
    }
  }

  private remoteClosed(channelId: string, b: PortBinding): void {
    if (b.abandoned || this.bindings.get(channelId) !== b) return;
    b.abandoned = true;
    b.port = null;
    try {
      this.control.close(channelId);
    } catch {
      this.bindings.delete(channelId);
    }
  }

  private finish(channelId: string, b: PortBinding, error: AppError | null): void {
    this.bindings.delete(channelId);
    const port = b.port;
    b.port = null;
    b.abandoned = true;
    if (!port) return;
    const end: ChannelPortClosed = { type: 'closed', error };
    port.postMessage(end);
    port.close();
  }
}
