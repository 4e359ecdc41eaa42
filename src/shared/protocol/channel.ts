import { z } from 'zod';
import type { RpcErrorObject } from '../errors';

/**
 * Streams through the daemon: `firedeckd console|shell|vnc <vm>` open them on the daemon's unix socket, and the
 * daemon (root: it reads the console files, holds the guest key and the VNC passwords) connects to the guest.
 *
 * Wire, on one fresh connection to the socket:
 * 1. the client sends one JSON-RPC request frame (a line) `channel.open` with {@link ChannelOpenParams}, and
 *    nothing else until the reply;
 * 2. the daemon answers with one JSON-RPC response line: a failure ends the connection; a success
 *    ({@link ChannelOpenResult}) switches both directions to binary frames;
 * 3. binary frames: `type` (1 byte), payload length (4 bytes, big-endian), payload (at most
 *    {@link MAX_CHANNEL_PAYLOAD} bytes). Types are {@link ChannelFrame}. The daemon's last frame is `exit`,
 *    then it ends the connection. A client that closes the connection detaches: the daemon closes the guest
 *    side (SSH channel, VNC connection, console follow) and the VM is not affected.
 * Backpressure: each side stops reading its source while the other's socket buffer is full.
 */
export const CHANNEL_OPEN_METHOD = 'channel.open';

/** A VM by id (`vm-…`) or name, as operators type it. */
export const VmRef = z
  .string()
  .min(1)
  .max(128)
  .regex(/^[A-Za-z0-9._-]+$/, 'a VM id or name');

export const ChannelPty = z
  .object({
    cols: z.number().int().min(1).max(10_000),
    rows: z.number().int().min(1).max(10_000),
    term: z
      .string()
      .max(64)
      .regex(/^[A-Za-z0-9._+-]+$/),
  })
  .strict();
export type ChannelPty = z.infer<typeof ChannelPty>;

export const ChannelOpenParams = z.discriminatedUnion('kind', [
  z
    .object({
      kind: z.literal('console'),
      vm: VmRef,
      /** Lines of the capped console log sent first. */
      lines: z.number().int().min(1).max(100_000),
      /** Then the live console (`--follow`). */
      follow: z.boolean(),
      /** Two-way: data frames from the client go to the guest's serial input (`--attach`). */
      attach: z.boolean(),
    })
    .strict(),
  z
    .object({
      kind: z.literal('shell'),
      vm: VmRef,
      /** A command line for the guest's shell; null: a login shell. */
      command: z.string().min(1).max(65_536).nullable(),
      /** A pseudo-terminal of this size, or none (a pipe, as `ssh -T`). */
      pty: ChannelPty.nullable(),
    })
    .strict(),
  z.object({ kind: z.literal('vnc'), vm: VmRef }).strict(),
]);
export type ChannelOpenParams = z.infer<typeof ChannelOpenParams>;

export const ChannelOpenResult = z
  .object({ vmId: z.string(), vmName: z.string(), kind: z.enum(['console', 'shell', 'vnc']) })
  .strict();
export type ChannelOpenResult = z.infer<typeof ChannelOpenResult>;

export const ChannelFrame = {
  /** Stream bytes: client → daemon: the stream's input; daemon → client: its output. */
  data: 1,
  /** Client → daemon: the terminal's new size, `cols` and `rows` as two u16 (shell with a pty). */
  resize: 2,
  /** Client → daemon: no more input (half-close; the guest command sees end of file). */
  eof: 3,
  /** Daemon → client: the guest command's standard error (shell without a pty). */
  stderr: 4,
  /** Daemon → client: what came before was history (the console log's tail); what follows is live. */
  live: 5,
  /** Daemon → client, last: JSON {@link ChannelExit}. */
  exit: 6,
} as const;
export type ChannelFrameType = (typeof ChannelFrame)[keyof typeof ChannelFrame];

export const MAX_CHANNEL_PAYLOAD = 64 * 1024;
export const CHANNEL_HEADER_BYTES = 5;

export const ChannelExit = z
  .object({
    /** The guest command's exit status (shell), 0 for a stream that ended normally, null when killed. */
    code: z.number().int().nullable(),
    signal: z.string().max(32).nullable(),
    error: z
      .object({ code: z.number().int(), message: z.string(), data: z.unknown().optional() })
      .passthrough()
      .nullable(),
  })
  .strict();
export interface ChannelExit {
  code: number | null;
  signal: string | null;
  error: RpcErrorObject | null;
}

/** One frame's bytes (header and payload); payloads over the limit are split by {@link encodeChannelData}. */
export function encodeChannelFrame(type: ChannelFrameType, payload: Uint8Array = new Uint8Array(0)): Uint8Array {
  if (payload.length > MAX_CHANNEL_PAYLOAD) throw new RangeError('channel frame payload too large');
  const out = new Uint8Array(CHANNEL_HEADER_BYTES + payload.length);
  out[0] = type;
  new DataView(out.buffer).setUint32(1, payload.length, false);
  out.set(payload, CHANNEL_HEADER_BYTES);
  return out;
}

/** Data (or stderr) bytes of any length as frames of at most {@link MAX_CHANNEL_PAYLOAD}. */
export function encodeChannelData(
  bytes: Uint8Array,
  type: typeof ChannelFrame.data | typeof ChannelFrame.stderr = ChannelFrame.data,
): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let i = 0; i < bytes.length; i += MAX_CHANNEL_PAYLOAD) {
    out.push(encodeChannelFrame(type, bytes.subarray(i, i + MAX_CHANNEL_PAYLOAD)));
  }
  return out;
}

export function encodeResize(cols: number, rows: number): Uint8Array {
  const payload = new Uint8Array(4);
  const view = new DataView(payload.buffer);
  view.setUint16(0, Math.max(1, Math.min(10_000, cols)), false);
  view.setUint16(2, Math.max(1, Math.min(10_000, rows)), false);
  return encodeChannelFrame(ChannelFrame.resize, payload);
}

export function decodeResize(payload: Uint8Array): { cols: number; rows: number } | null {
  if (payload.length !== 4) return null;
  const view = new DataView(payload.buffer, payload.byteOffset, 4);
  const cols = view.getUint16(0, false);
  const rows = view.getUint16(2, false);
  return cols > 0 && rows > 0 ? { cols, rows } : null;
}

export function encodeExit(exit: ChannelExit): Uint8Array {
  return encodeChannelFrame(ChannelFrame.exit, new TextEncoder().encode(JSON.stringify(exit)));
}

export type ChannelFrameEvent =
  | { type: 'frame'; frameType: number; payload: Uint8Array }
  | { type: 'invalid'; reason: string };

/** Splits a byte stream into channel frames; an unknown type or an oversized length is reported, then nothing. */
export class ChannelFrameReader {
  private buffer = new Uint8Array(0);
  private broken = false;

  push(chunk: Uint8Array): ChannelFrameEvent[] {
    if (this.broken) return [];
    const joined = new Uint8Array(this.buffer.length + chunk.length);
    joined.set(this.buffer, 0);
    joined.set(chunk, this.buffer.length);
    const out: ChannelFrameEvent[] = [];
    let at = 0;
    while (joined.length - at >= CHANNEL_HEADER_BYTES) {
      const type = joined[at]!;
      const length = new DataView(joined.buffer, joined.byteOffset + at + 1, 4).getUint32(0, false);
      if (type < ChannelFrame.data || type > ChannelFrame.exit || length > MAX_CHANNEL_PAYLOAD) {
        this.broken = true;
        out.push({ type: 'invalid', reason: `bad channel frame (type ${type}, ${length} bytes)` });
        return out;
      }
      if (joined.length - at - CHANNEL_HEADER_BYTES < length) break;
      const start = at + CHANNEL_HEADER_BYTES;
      out.push({ type: 'frame', frameType: type, payload: joined.slice(start, start + length) });
      at = start + length;
    }
    this.buffer = joined.slice(at);
    return out;
  }
}
