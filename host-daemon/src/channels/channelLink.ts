import type net from 'node:net';
import { Readable, Writable } from 'node:stream';
import type { FiredeckError } from '../../../src/shared/errors';
import {
  ChannelFrame,
  ChannelFrameReader,
  decodeResize,
  encodeChannelData,
  encodeChannelFrame,
  encodeExit,
  type ChannelExit,
} from '../../../src/shared/protocol/channel';

/** A client that stops reading loses console output past this rather than making the daemon buffer it. */
const FOLLOW_DROP_BYTES = 4 * 1024 * 1024;

/**
 * The daemon's end of an open channel (src/shared/protocol/channel.ts): the client's data frames as a Readable,
 * a Writable that frames the stream's output, with backpressure both ways (the socket is paused while `input`
 * is full; `output`'s writes complete when the socket has drained).
 */
export class ChannelLink {
  readonly input: Readable;
  readonly output: Writable;
  readonly stderr: Writable;
  private readonly resizeHandlers = new Set<(cols: number, rows: number) => void>();
  private readonly closeHandlers = new Set<() => void>();
  private ended = false;

  constructor(private readonly socket: net.Socket) {
    const reader = new ChannelFrameReader();
    this.input = new Readable({ read: () => socket.resume() });
    this.output = this.framedWritable(ChannelFrame.data);
    this.stderr = this.framedWritable(ChannelFrame.stderr);
    socket.on('data', (chunk: Buffer) => {
      for (const ev of reader.push(chunk)) {
        if (ev.type === 'invalid') {
          socket.destroy();
          return;
        }
        if (ev.frameType === ChannelFrame.data) {
          if (!this.input.push(Buffer.from(ev.payload))) socket.pause();
        } else if (ev.frameType === ChannelFrame.resize) {
          const size = decodeResize(ev.payload);
          if (size) for (const h of this.resizeHandlers) h(size.cols, size.rows);
        } else if (ev.frameType === ChannelFrame.eof) {
          this.input.push(null);
        }
      }
    });
    socket.on('error', () => undefined);
    socket.resume();
    socket.once('close', () => {
      this.ended = true;
      this.input.destroy();
      for (const h of this.closeHandlers) h();
      this.closeHandlers.clear();
    });
  }

  get isClosed(): boolean {
    return this.ended || this.socket.destroyed;
  }

  onResize(handler: (cols: number, rows: number) => void): void {
    this.resizeHandlers.add(handler);
  }

  /** The client went away (detach): the caller closes the guest side. */
  onClose(handler: () => void): void {
    if (this.isClosed) handler();
    else this.closeHandlers.add(handler);
  }

  /** Live console bytes: dropped, not buffered, for a client that stopped reading. */
  sendOrDrop(chunk: Uint8Array): void {
    if (this.isClosed || this.socket.writableLength > FOLLOW_DROP_BYTES) return;
    for (const f of encodeChannelData(chunk)) this.socket.write(f);
  }

  live(): void {
    if (!this.isClosed) this.socket.write(encodeChannelFrame(ChannelFrame.live));
  }

  /** The last frame, then the end of the connection. */
  exit(code: number | null, signal: string | null = null, error: FiredeckError | null = null): void {
    if (this.isClosed) return;
    const exit: ChannelExit = { code, signal, error: error ? error.toJSON() : null };
    this.ended = true;
    // Output still waiting for the socket to drain goes first: the exit frame is the last one.
    const pending = [this.output, this.stderr].filter((w) => w.writableLength > 0);
    if (pending.length === 0) {
      this.socket.end(encodeExit(exit));
      return;
    }
    let left = pending.length;
    for (const w of pending) {
      w.once('drain', () => {
        if (--left === 0) this.socket.end(encodeExit(exit));
      });
    }
  }

  private framedWritable(type: typeof ChannelFrame.data | typeof ChannelFrame.stderr): Writable {
    return new Writable({
      write: (chunk: Buffer, _encoding, callback) => {
        if (this.socket.destroyed) {
          callback();
          return;
        }
        let flushed = true;
        for (const f of encodeChannelData(chunk, type)) flushed = this.socket.write(f);
        if (flushed) callback();
        else this.socket.once('drain', () => callback());
      },
    });
  }
}
