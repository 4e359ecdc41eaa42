import fs from 'node:fs';
import { CONSOLE_LINE_MAX_CHARS, CONSOLE_TAIL_MAX_BYTES } from '../../../src/shared/protocol/vm';

/** A line cut into pieces of at most `max` characters, the way the console log view wraps it. */
export function cutConsoleLine(line: string, max: number = CONSOLE_LINE_MAX_CHARS): string[] {
  if (line.length <= max) return [line];
  const pieces: string[] = [];
  for (let at = 0; at < line.length; at += max) pieces.push(line.slice(at, at + max));
  return pieces;
}

/**
 * A VM's serial log: `console.log` up to `maxBytes`, then it becomes `console.log.1` (replacing the previous
 * one) and a new file starts. At most 2 × maxBytes on disk whatever the guest writes.
 */
export class ConsoleLog {
  private fd: number | null = null;
  private size = 0;

  constructor(
    readonly file: string,
    readonly maxBytes: number,
  ) {}

  get rotatedFile(): string {
    return `${this.file}.1`;
  }

  append(chunk: Uint8Array): void {
    let rest = chunk;
    while (rest.length > 0) {
      const fd = this.open();
      const room = this.maxBytes - this.size;
      if (room <= 0) {
        this.rotate();
        continue;
      }
      const piece = rest.length > room ? rest.subarray(0, room) : rest;
      fs.writeSync(fd, piece);
      this.size += piece.length;
      rest = rest.subarray(piece.length);
    }
  }

  close(): void {
    if (this.fd !== null) fs.closeSync(this.fd);
    this.fd = null;
  }

  /**
   * The last `lines` lines across the rotated and the current file, a line longer than
   * {@link CONSOLE_LINE_MAX_CHARS} counting as its pieces, and no more of them than fit in `maxBytes` as JSON
   * strings: a guest that never writes a newline cannot make a reply too large to deliver.
   */
  tail(lines: number, maxBytes: number = CONSOLE_TAIL_MAX_BYTES): { lines: string[]; truncated: boolean } {
    const parts: Buffer[] = [];
    for (const f of [this.rotatedFile, this.file]) {
      try {
        parts.push(fs.readFileSync(f));
      } catch {
        // not written yet
      }
    }
    const text = Buffer.concat(parts).toString('utf8');
    const all = text.split('\n');
    if (all.length > 0 && all[all.length - 1] === '') all.pop();
    // Newest first, until the count or the byte budget is reached.
    const newest: string[] = [];
    let bytes = 0;
    let truncated = fs.existsSync(this.rotatedFile);
    fill: for (let i = all.length - 1; i >= 0; i--) {
      const line = all[i]!;
      const pieces = cutConsoleLine(line.endsWith('\r') ? line.slice(0, -1) : line);
      for (let j = pieces.length - 1; j >= 0; j--) {
        const cost = Buffer.byteLength(JSON.stringify(pieces[j])) + 1;
        if (newest.length === lines || bytes + cost > maxBytes) {
          truncated = true;
          break fill;
        }
        bytes += cost;
        newest.push(pieces[j]!);
      }
    }
    return { lines: newest.reverse(), truncated };
  }

  private open(): number {
    if (this.fd === null) {
      this.fd = fs.openSync(this.file, 'a', 0o640);
      this.size = fs.fstatSync(this.fd).size;
    }
    return this.fd;
  }

  private rotate(): void {
    this.close();
    fs.renameSync(this.file, this.rotatedFile);
    this.fd = fs.openSync(this.file, 'a', 0o640);
    this.size = 0;
  }
}
