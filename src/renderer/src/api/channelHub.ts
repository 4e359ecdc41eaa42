import {
  CHANNEL_PORT_MAX_WRITE,
  type ChannelPortInbound,
  type ChannelPortOutbound,
} from '../../../shared/app/channelPort';
import type { AppError, ChannelOpenParams } from '../../../shared/app/contract';
import type { AppClient } from './appClient';

/** A console, shell or VNC stream from main. The consumer acknowledges bytes once it has processed them. */
export interface RendererChannel {
  readonly id: string;
  /** One consumer; data that arrived before it subscribed is delivered first. */
  onData(listener: (bytes: Uint8Array) => void): void;
  /** Every listener hears the end once (the channel link and a protocol on top, such as noVNC's socket). */
  onClose(listener: (error: AppError | null) => void): void;
  ack(bytes: number): void;
  write(data: Uint8Array | string): void;
  resize(cols: number, rows: number): void;
  close(): void;
  readonly closed: boolean;
}

/** Acks are batched: one call per this many bytes, or per tick of this length. */
const ACK_BATCH_BYTES = 64 * 1024;
const ACK_FLUSH_MS = 30;
/** Output for a channel id the hub has not seen opened yet is kept briefly (events may overtake the answer). */
const EARLY_LIMIT = 64;

const LINK_LOST: AppError = {
  kind: 'disconnected',
  message: 'Lost the connection to Firedeck web mode',
  hint: 'It reconnects on its own while web mode runs; then reconnect here.',
};

interface ChannelState {
  listener: ((bytes: Uint8Array) => void) | null;
  closeListeners: ((error: AppError | null) => void)[];
  backlog: Uint8Array[];
  closedWith: { error: AppError | null } | null;
}

export class ChannelHub {
  /** True while the page's link to main is down (web mode); what ends meanwhile ended because of it. */
  linkLost = false;
  private readonly channels = new Map<string, ChannelState>();
  private readonly early = new Map<string, { data: Uint8Array[]; closed: { error: AppError | null } | null }>();

  constructor(private readonly client: AppClient) {
    client.onEvent((event) => {
      if (event.type === 'channel.data') this.deliver(event.channelId, decodeBase64(event.data));
      else if (event.type === 'channel.closed') this.finish(event.channelId, event.error);
    });
    // Main closes a web session's channels when its socket goes: say so to every consumer (a terminal then
    // offers to reconnect, keeping its scrollback) instead of leaving them to write into nothing.
    client.onLink?.((link) => {
      this.linkLost = link === 'lost';
      if (link !== 'lost') return;
      this.early.clear();
      for (const channelId of [...this.channels.keys()]) this.finish(channelId, LINK_LOST);
    });
  }

  async open(params: ChannelOpenParams): Promise<RendererChannel> {
    const { channelId } = await this.client.call('channels.open', params);
    if (this.client.channelPort) {
      try {
        return portChannel(channelId, await this.client.channelPort(channelId));
      } catch (err) {
        this.client.call('channels.close', { channelId }).catch(() => undefined);
        throw err;
      }
    }
    const pre = this.early.get(channelId);
    this.early.delete(channelId);
    const state: ChannelState = { listener: null, closeListeners: [], backlog: pre?.data ?? [], closedWith: null };
    this.channels.set(channelId, state);
    if (pre?.closed) state.closedWith = pre.closed;

    const client = this.client;
    let pendingAck = 0;
    let ackTimer: ReturnType<typeof setTimeout> | null = null;
    const flushAck = (): void => {
      if (ackTimer) clearTimeout(ackTimer);
      ackTimer = null;
      if (pendingAck === 0 || state.closedWith) return;
      const bytes = pendingAck;
      pendingAck = 0;
      client.call('channels.ack', { channelId, bytes }).catch(() => undefined);
    };
    const encoder = new TextEncoder();
    return {
      id: channelId,
      get closed() {
        return state.closedWith !== null;
      },
      onData(listener) {
        state.listener = listener;
        const backlog = state.backlog;
        state.backlog = [];
        for (const chunk of backlog) listener(chunk);
      },
      onClose(listener) {
        state.closeListeners.push(listener);
        if (state.closedWith) listener(state.closedWith.error);
      },
      ack(bytes) {
        pendingAck += bytes;
        if (pendingAck >= ACK_BATCH_BYTES) flushAck();
        else ackTimer ??= setTimeout(flushAck, ACK_FLUSH_MS);
      },
      write(data) {
        if (state.closedWith) return;
        const bytes = typeof data === 'string' ? encoder.encode(data) : data;
        // In pieces that fit one call (a big paste would exceed its size cap); calls go out in order.
        for (let at = 0; at < bytes.byteLength; at += CHANNEL_PORT_MAX_WRITE) {
          const piece = encodeBase64(bytes.subarray(at, at + CHANNEL_PORT_MAX_WRITE));
          client.call('channels.write', { channelId, data: piece, encoding: 'base64' }).catch(() => undefined);
        }
      },
      resize(cols, rows) {
        if (state.closedWith) return;
        client.call('channels.resize', { channelId, cols, rows }).catch(() => undefined);
      },
      close() {
        if (state.closedWith) return;
        client.call('channels.close', { channelId }).catch(() => undefined);
      },
    };
  }

  private deliver(channelId: string, bytes: Uint8Array): void {
    const state = this.channels.get(channelId);
    if (state) {
      if (state.listener) state.listener(bytes);
      else state.backlog.push(bytes);
      return;
    }
    const pre = this.early.get(channelId) ?? { data: [], closed: null };
    if (pre.data.length < EARLY_LIMIT) pre.data.push(bytes);
    this.early.set(channelId, pre);
  }

  private finish(channelId: string, error: AppError | null): void {
    const state = this.channels.get(channelId);
    if (!state) {
      const pre = this.early.get(channelId) ?? { data: [], closed: null };
      pre.closed = { error };
      this.early.set(channelId, pre);
      return;
    }
    this.channels.delete(channelId);
    state.closedWith = { error };
    for (const l of state.closeListeners) l(error);
  }
}

/**
 * Electron: a channel on its own MessagePort from main. Output arrives as `Uint8Array` messages and a final
 * `closed` message; writes, acks, resizes and the close go back as messages main validates.
 */
export function portChannel(id: string, port: MessagePort): RendererChannel {
  let listener: ((bytes: Uint8Array) => void) | null = null;
  const closeListeners: ((error: AppError | null) => void)[] = [];
  let backlog: Uint8Array[] = [];
  let closedWith: { error: AppError | null } | null = null;
  let pendingAck = 0;
  let ackTimer: ReturnType<typeof setTimeout> | null = null;
  const encoder = new TextEncoder();

  const send = (message: ChannelPortInbound): void => {
    if (!closedWith) port.postMessage(message);
  };
  const flushAck = (): void => {
    if (ackTimer) clearTimeout(ackTimer);
    ackTimer = null;
    if (pendingAck === 0) return;
    const bytes = pendingAck;
    pendingAck = 0;
    send({ type: 'ack', bytes });
  };
  const finish = (error: AppError | null): void => {
    if (closedWith) return;
    closedWith = { error };
    if (ackTimer) clearTimeout(ackTimer);
    port.onmessage = null;
    port.close();
    for (const l of closeListeners) l(error);
  };
  // Assigning onmessage starts the port; messages that came before wait in its queue until then.
  // Main sends only bytes and the end, and checked both: they are told apart here, not validated again.
  port.onmessage = (event: MessageEvent<ChannelPortOutbound>) => {
    const data = event.data;
    if (data instanceof Uint8Array) {
      if (listener) listener(data);
      else backlog.push(data);
    } else if (data.type === 'closed') finish(data.error);
  };

  return {
    id,
    get closed() {
      return closedWith !== null;
    },
    onData(l) {
      listener = l;
      const held = backlog;
      backlog = [];
      for (const chunk of held) l(chunk);
    },
    onClose(l) {
      closeListeners.push(l);
      if (closedWith) l(closedWith.error);
    },
    ack(bytes) {
      pendingAck += bytes;
      if (pendingAck >= ACK_BATCH_BYTES) flushAck();
      else ackTimer ??= setTimeout(flushAck, ACK_FLUSH_MS);
    },
    write(data) {
      const bytes = typeof data === 'string' ? encoder.encode(data) : data;
      for (let at = 0; at < bytes.byteLength; at += CHANNEL_PORT_MAX_WRITE) {
        // slice copies exactly these bytes: cloning a view would send its whole backing buffer.
        send({ type: 'write', data: bytes.slice(at, at + CHANNEL_PORT_MAX_WRITE) });
      }
    },
    resize(cols, rows) {
      send({ type: 'resize', cols, rows });
    },
    close() {
      // main answers with `closed` once the stream has ended, as in web mode.
      send({ type: 'close' });
    },
  };
}

export function decodeBase64(text: string): Uint8Array {
  const bin = atob(text);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

export function encodeBase64(bytes: Uint8Array): string {
  let bin = '';
  const step = 0x8000;
  for (let i = 0; i < bytes.length; i += step) bin += String.fromCharCode(...bytes.subarray(i, i + step));
  return btoa(bin);
}
