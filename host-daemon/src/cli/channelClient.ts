import net from 'node:net';
import os from 'node:os';
import type { Readable, Writable } from 'node:stream';
import { FiredeckError } from '../../../src/shared/errors';
import {
  CHANNEL_OPEN_METHOD,
  ChannelExit,
  ChannelFrame,
  ChannelFrameReader,
  ChannelOpenResult,
  encodeChannelData,
  encodeChannelFrame,
  encodeResize,
  type ChannelOpenParams,
} from '../../../src/shared/protocol/channel';
import { encodeFrame } from '../../../src/shared/rpc/framing';
import { sessionHelloFrame } from '../../../src/shared/protocol/session';
import { classifyClientFrame, requestFrame } from '../../../src/shared/rpc/jsonrpc';
import { unreachable } from './daemonClient';

/** The longest `channel.open` reply line we wait for before the binary frames. */
const MAX_REPLY_BYTES = 64 * 1024;

export interface ChannelHandlers {
  /** Stream output; return false to say the destination is full (the socket pauses until `resume`). */
  data(chunk: Buffer): boolean;
  stderr?(chunk: Buffer): boolean;
  /**
   * History is over; the live stream follows. Given the channel: this can come in the same chunk as the
   * `channel.open` reply, before `open` has resolved.
   */
  live?(channel: DaemonChannel): void;
}

/**
 * The CLI's end of a channel through the daemon (src/shared/protocol/channel.ts). The CLI sees stream bytes
 * only: the daemon reads the console, holds the guest key and the VNC password.
 */
export class DaemonChannel {
  readonly exited: Promise<ChannelExit>;
  private resolveExit!: (exit: ChannelExit) => void;

  private constructor(
    private readonly socket: net.Socket,
    readonly result: ChannelOpenResult,
  ) {
    this.exited = new Promise((resolve) => (this.resolveExit = resolve));
  }

  static async open(socketPath: string, params: ChannelOpenParams, handlers: ChannelHandlers): Promise<DaemonChannel> {
    const socket = await connect(socketPath);
    const info = os.userInfo();
    socket.write(
      sessionHelloFrame({ user: info.username, uid: info.uid }) +
        encodeFrame(requestFrame(1, CHANNEL_OPEN_METHOD, params)),
    );
    return new Promise<DaemonChannel>((resolve, reject) => {
      let head = Buffer.alloc(0);
      const onData = (chunk: Buffer): void => {
        head = Buffer.concat([head, chunk]);
        const nl = head.indexOf(0x0a);
        if (nl === -1) {
          if (head.length > MAX_REPLY_BYTES)
            fail(new FiredeckError('frame_too_large', 'firedeckd sent an oversized reply'));
          return;
        }
        socket.off('data', onData);
        socket.off('close', onClose);
        const reply = classifyClientFrame(head.subarray(0, nl).toString('utf8'));
        if (reply.type === 'failure') {
          socket.destroy();
          reject(FiredeckError.fromJSON(reply.message.error));
          return;
        }
        const result = reply.type === 'success' ? ChannelOpenResult.safeParse(reply.message.result) : null;
        if (!result?.success) {
          fail(new FiredeckError('internal', 'firedeckd answered channel.open with an unexpected reply'));
          return;
        }
        const channel = new DaemonChannel(socket, result.data);
        channel.start(handlers, head.subarray(nl + 1));
        resolve(channel);
      };
      const onClose = (): void => fail(new FiredeckError('disconnected', 'firedeckd closed the connection'));
      const fail = (err: FiredeckError): void => {
        socket.destroy();
        reject(err);
      };
      socket.on('data', onData);
      socket.once('close', onClose);
    });
  }

  private start(handlers: ChannelHandlers, rest: Buffer): void {
    const reader = new ChannelFrameReader();
    let exit: ChannelExit | null = null;
    const onFrames = (chunk: Uint8Array): void => {
      for (const ev of reader.push(chunk)) {
        if (ev.type === 'invalid') {
          exit = lost(ev.reason);
          this.socket.destroy();
          return;
        }
        const payload = Buffer.from(ev.payload);
        if (ev.frameType === ChannelFrame.data) {
          if (!handlers.data(payload)) this.socket.pause();
        } else if (ev.frameType === ChannelFrame.stderr) {
          if (handlers.stderr && !handlers.stderr(payload)) this.socket.pause();
        } else if (ev.frameType === ChannelFrame.live) {
          handlers.live?.(this);
        } else if (ev.frameType === ChannelFrame.exit) {
          const parsed = safeJson(payload.toString('utf8'));
          const checked = ChannelExit.safeParse(parsed);
          exit = checked.success ? (checked.data as ChannelExit) : lost('firedeckd sent a malformed exit frame');
        }
      }
    };
    this.socket.on('data', onFrames);
    this.socket.on('error', () => undefined);
    this.socket.once('close', () => this.resolveExit(exit ?? lost('firedeckd closed the channel')));
    if (rest.length > 0) onFrames(rest);
  }

  /** The destination drained: read again. */
  resume(): void {
    this.socket.resume();
  }

  /** Returns false when the socket's buffer is full (wait for `drained`). */
  write(data: Buffer): boolean {
    let ok = true;
    for (const f of encodeChannelData(data)) ok = this.socket.write(f);
    return ok;
  }

  drained(): Promise<void> {
    return new Promise((resolve) => this.socket.once('drain', () => resolve()));
  }

  resize(cols: number, rows: number): void {
    if (!this.socket.destroyed) this.socket.write(encodeResize(cols, rows));
  }

  /** No more input (the guest command sees end of file). */
  endInput(): void {
    if (!this.socket.destroyed) this.socket.write(encodeChannelFrame(ChannelFrame.eof));
  }

  /** Detach: the daemon closes the guest side. */
  close(): void {
    this.socket.destroy();
  }

  /** Carries `input` into the channel with backpressure until it ends (then `endInput`). */
  pumpInput(input: Readable, transform: (chunk: Buffer) => Buffer | null = (c) => c): void {
    input.on('data', (chunk: Buffer) => {
      const data = transform(chunk);
      if (data === null) return;
      if (data.length > 0 && !this.write(data)) {
        input.pause();
        void this.drained().then(() => input.resume());
      }
    });
    input.once('end', () => this.endInput());
    input.resume();
  }

  /** Handlers that write to `out`, pausing the channel while `out` is full. */
  static sink(out: Writable, channel: () => DaemonChannel | null): (chunk: Buffer) => boolean {
    return (chunk) => {
      const ok = out.write(chunk);
      if (!ok) out.once('drain', () => channel()?.resume());
      return ok;
    };
  }
}

function connect(socketPath: string): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(socketPath);
    socket.once('connect', () => resolve(socket));
    socket.once('error', (err: NodeJS.ErrnoException) => {
      reject(unreachable(socketPath, err));
    });
  });
}

function lost(message: string): ChannelExit {
  return { code: null, signal: null, error: new FiredeckError('disconnected', message).toJSON() };
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
}
