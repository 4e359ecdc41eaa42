import { CONSOLE_LINE_MAX_CHARS } from '../../../shared/protocol/vm';

/** How many lines of one build's log the app keeps; older ones are dropped (and counted). */
export const BUILD_LOG_MAX_LINES = 5_000;

/**
 * A build's log as lines, bounded like the console's buffer (`ConsoleBuffer`): oldest lines dropped past
 * `maxLines`, each line cut at `CONSOLE_LINE_MAX_CHARS`. Mutable on purpose (a noisy build appends thousands
 * of lines; copying the whole log per line would cost O(n²)); `version` tells a view that it changed.
 */
export class BuildLog {
  private readonly lines: string[] = [];
  private dropped = 0;
  version = 0;

  constructor(private readonly maxLines = BUILD_LOG_MAX_LINES) {}

  push(line: string): void {
    for (let i = 0; i < line.length || i === 0; i += CONSOLE_LINE_MAX_CHARS) {
      this.lines.push(line.slice(i, i + CONSOLE_LINE_MAX_CHARS));
    }
    if (this.lines.length > this.maxLines) {
      const extra = this.lines.length - this.maxLines;
      this.lines.splice(0, extra);
      this.dropped += extra;
    }
    this.version++;
  }

  /** Starts over from a daemon's snapshot: its tail, and how many lines came before that tail. */
  reset(tail: readonly string[], before: number): void {
    this.lines.length = 0;
    this.dropped = before;
    for (const line of tail) this.push(line);
  }

  get length(): number {
    return this.lines.length;
  }

  /** Lines no longer kept (dropped here, or before the daemon's tail began). */
  get droppedLines(): number {
    return this.dropped;
  }

  /** The last `n` lines, oldest first. */
  tail(n: number): string[] {
    return this.lines.slice(Math.max(0, this.lines.length - n));
  }
}
