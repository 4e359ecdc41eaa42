import { FiredeckError } from '../errors';

/** Largest frame either end accepts; a longer one is answered with `frame_too_large` and dropped. */
export const MAX_FRAME_BYTES = 1024 * 1024;

/** How much of an oversized frame's start is kept: enough for `{"jsonrpc":"2.0","id":…` to name its call. */
export const OVERSIZED_HEAD_CHARS = 256;

/** An oversized frame is dropped; `head` is its start, so a client can tell which pending call it answered. */
export type FrameEvent = { type: 'frame'; text: string } | { type: 'oversized'; error: FiredeckError; head: string };

/**
 * Splits a byte stream into newline-delimited frames (JSON never contains a raw newline). An oversized frame
 * is skipped up to its newline and reported once, so one bad peer message never desynchronises the stream.
 */
export class LineFramer {
  private readonly decoder = new TextDecoder('utf-8');
  private buffer = '';
  private discarding = false;

  constructor(private readonly maxFrameBytes: number = MAX_FRAME_BYTES) {}

  push(chunk: Uint8Array | string): FrameEvent[] {
    const text = typeof chunk === 'string' ? chunk : this.decoder.decode(chunk, { stream: true });
    const out: FrameEvent[] = [];
    let start = 0;
    for (;;) {
      const nl = text.indexOf('\n', start);
      if (nl === -1) break;
      const piece = text.slice(start, nl);
      start = nl + 1;
      if (this.discarding) {
        this.discarding = false;
        this.buffer = '';
        continue;
      }
      const line = this.buffer + piece;
      this.buffer = '';
      if (line.length > this.maxFrameBytes) {
        out.push({ type: 'oversized', error: tooLarge(this.maxFrameBytes), head: line.slice(0, OVERSIZED_HEAD_CHARS) });
        continue;
      }
      const trimmed = line.endsWith('\r') ? line.slice(0, -1) : line;
      if (trimmed.trim().length > 0) out.push({ type: 'frame', text: trimmed });
    }
    if (!this.discarding) {
      this.buffer += text.slice(start);
      if (this.buffer.length > this.maxFrameBytes) {
        const head = this.buffer.slice(0, OVERSIZED_HEAD_CHARS);
        this.buffer = '';
        this.discarding = true;
        out.push({ type: 'oversized', error: tooLarge(this.maxFrameBytes), head });
      }
    }
    return out;
  }
}

function tooLarge(max: number): FiredeckError {
  return new FiredeckError('frame_too_large', `Frame larger than ${max} bytes was dropped`, {
    details: { maxFrameBytes: max },
  });
}

export function encodeFrame(text: string): string {
  return text + '\n';
}
