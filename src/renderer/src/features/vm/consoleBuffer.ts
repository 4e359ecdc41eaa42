import { CONSOLE_LINE_MAX_CHARS } from '../../../../shared/protocol/vm';

/** ANSI escape sequences (CSI, OSC, single-char) that a serial console log shows as noise. */
// eslint-disable-next-line no-control-regex
const ANSI = /\u001b(?:\[[0-9;?]*[ -/]*[@-~]|\][^\u0007\u001b]*(?:\u0007|\u001b\\)|[@-Z\\-_])/g;

/**
 * Longer lines are cut into pieces of this many characters, so one line never grows without bound; the
 * daemon's `vm.console.tail` cuts them the same way.
 */
export const MAX_LINE_CHARS = CONSOLE_LINE_MAX_CHARS;

/**
 * The serial console as lines: bytes in (any chunking), complete lines out, oldest dropped past `maxLines`.
 * The open last line is kept apart until its newline arrives. A carriage return inside a line starts it
 * over (progress bars redraw with `\r`), and a line longer than `MAX_LINE_CHARS` is cut, so a console that
 * never sends a newline costs as little per chunk as one that does.
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
    let from = 0;
    for (let nl = text.indexOf('\n'); nl !== -1; nl = text.indexOf('\n', from)) {
      this.extend(text.slice(from, nl));
      this.done.push(clean(this.partial));
      this.partial = '';
      from = nl + 1;
    }
    this.extend(text.slice(from));
    if (this.done.length > this.maxLines) {
      const extra = this.done.length - this.maxLines;
      this.done.splice(0, extra);
      this.dropped += extra;
    }
    this.version++;
  }

  /** Adds text without a newline to the open line. */
  private extend(piece: string): void {
    if (piece === '') return;
    let line = this.partial + piece;
    // A trailing \r may be the first half of \r\n; one before other text starts the line over.
    const body = line.replace(/\r+$/, '');
    const cr = body.lastIndexOf('\r');
    if (cr !== -1) line = line.slice(cr + 1);
    while (line.length > MAX_LINE_CHARS) {
      this.done.push(clean(line.slice(0, MAX_LINE_CHARS)));
      line = line.slice(MAX_LINE_CHARS);
    }
    this.partial = line;
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
