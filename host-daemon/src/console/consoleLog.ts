import fs from 'node:fs';

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

  /** The last `lines` lines across the rotated and the current file. */
  tail(lines: number): { lines: string[]; truncated: boolean } {
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
    const cleaned = all.map((l) => (l.endsWith('\r') ? l.slice(0, -1) : l));
    const truncated = cleaned.length > lines || fs.existsSync(this.rotatedFile);
    return { lines: cleaned.slice(-lines), truncated };
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
