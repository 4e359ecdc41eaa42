/** ANSI escape sequences (CSI, OSC, single-char) that a serial console log shows as noise. */
// eslint-disable-next-line no-control-regex
const ANSI = /\u001b(?:\[[0-9;?]*[ -/]*[@-~]|\][^\u0007\u001b]*(?:\u0007|\u001b\\)|[@-Z\\-_])/g;

/**
 * The serial console as lines: bytes in (any chunking), complete lines out, oldest dropped past `maxLines`.
 * The open last line is kept apart until its newline arrives.
 */
export class ConsoleBuffer {
  private readonly decoder = new TextDecoder('utf-8');
  private readonly done: string[] = [];
  private partial = '';
  private dropped = 0;
  version = 0;

  constructor(private readonly maxLines = 50_000) {}

  push(bytes: Uint8Array): void {
    const text = this.decoder.decode(bytes, { stream: true });
    const pieces = (this.partial + text).split('\n');
    this.partial = pieces.pop() ?? '';
    for (const p of pieces) this.done.push(clean(p));
    if (this.done.length > this.maxLines) {
      const extra = this.done.length - this.maxLines;
      this.done.splice(0, extra);
      this.dropped += extra;
    }
    this.version++;
  }

  get length(): number {
    return this.done.length + (this.partial ? 1 : 0);
  }

  /** Lines dropped from the start to stay under the cap. */
  get droppedLines(): number {
    return this.dropped;
  }

  line(i: number): string {
    return i < this.done.length ? this.done[i]! : clean(this.partial);
  }

  /** Indices of lines that contain `needle` (case-insensitive). */
  search(needle: string): number[] {
    const n = needle.toLowerCase();
    if (!n) return [];
    const out: number[] = [];
    for (let i = 0; i < this.length; i++) if (this.line(i).toLowerCase().includes(n)) out.push(i);
    return out;
  }

  text(): string {
    return this.done.join('\n') + (this.partial ? '\n' + clean(this.partial) : '\n');
  }
}

function clean(line: string): string {
  return line.replace(ANSI, '').replace(/\r/g, '');
}
