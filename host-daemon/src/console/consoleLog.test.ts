import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { CONSOLE_LINE_MAX_CHARS, CONSOLE_TAIL_MAX_BYTES, VmConsoleTail } from '../../../src/shared/protocol/vm';
import { LineFramer, MAX_FRAME_BYTES, encodeFrame } from '../../../src/shared/rpc/framing';
import { successFrame } from '../../../src/shared/rpc/jsonrpc';
import { ConsoleLog, cutConsoleLine } from './consoleLog';

/** 1.2 MB without a newline, as a guest can write it to its serial console; its characters say where they are. */
function longLine(): string {
  let line = '';
  for (let i = 0; line.length < 1_200_000; i++) line += `<${i}>`;
  return line;
}

/** The reply frame the daemon writes for a tail, with the longest id a request may carry. */
function replyFrame(tail: { lines: string[]; truncated: boolean }): string {
  return encodeFrame(successFrame('i'.repeat(128), tail));
}

let dir: string;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'firedeck-conlog-'));
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

describe('ConsoleLog', () => {
  it('never holds more than two files of maxBytes, whatever is written', () => {
    const log = new ConsoleLog(path.join(dir, 'console.log'), 4096);
    const line = Buffer.from('flood flood flood flood flood flood flood\n');
    for (let i = 0; i < 10_000; i++) log.append(line);
    log.append(Buffer.alloc(100_000, 0x41));
    log.close();
    const files = fs.readdirSync(dir).sort();
    expect(files).toEqual(['console.log', 'console.log.1']);
    for (const f of files) expect(fs.statSync(path.join(dir, f)).size).toBeLessThanOrEqual(4096);
  });

  it('tails across the rotated and current file and continues an existing file after reopen', () => {
    const file = path.join(dir, 'console.log');
    const log = new ConsoleLog(file, 64);
    for (let i = 0; i < 12; i++) log.append(Buffer.from(`line ${i}\n`));
    log.close();
    const tail = new ConsoleLog(file, 64).tail(3);
    expect(tail.lines).toEqual(['line 9', 'line 10', 'line 11']);
    expect(tail.truncated).toBe(true);

    const reopened = new ConsoleLog(file, 64);
    reopened.append(Buffer.from('after restart\r\n'));
    reopened.close();
    expect(new ConsoleLog(file, 64).tail(1).lines).toEqual(['after restart']);
  });

  it('reports an untruncated short log', () => {
    const log = new ConsoleLog(path.join(dir, 'console.log'), 1 << 20);
    log.append(Buffer.from('a\nb\n'));
    log.close();
    expect(log.tail(10)).toEqual({ lines: ['a', 'b'], truncated: false });
    expect(new ConsoleLog(path.join(dir, 'none.log'), 10).tail(5)).toEqual({ lines: [], truncated: false });
  });

  it('cuts a 1.2 MB line without a newline into pieces the way the log view wraps it', () => {
    const line = longLine();
    const pieces = cutConsoleLine(line);
    expect(pieces).toHaveLength(Math.ceil(line.length / CONSOLE_LINE_MAX_CHARS));
    expect(pieces.slice(0, -1).every((p) => p.length === CONSOLE_LINE_MAX_CHARS)).toBe(true);
    expect(pieces.join('')).toBe(line);
    expect(cutConsoleLine('short')).toEqual(['short']);
    expect(cutConsoleLine('')).toEqual(['']);

    const log = new ConsoleLog(path.join(dir, 'console.log'), 4 << 20);
    log.append(Buffer.from('booted\n'));
    log.append(Buffer.from(line));
    log.close();
    const all = log.tail(100_000, Number.POSITIVE_INFINITY);
    expect(all).toEqual({ lines: ['booted', ...pieces], truncated: false });
  });

  it('keeps a vm.console.tail reply under the frame cap: the newest pieces that fit, truncated', () => {
    const line = longLine();
    const log = new ConsoleLog(path.join(dir, 'console.log'), 4 << 20);
    log.append(Buffer.from('booted\n'));
    log.append(Buffer.from(`${line}\n`));
    // Lines whose JSON is several times their length: control characters and multi-byte characters.
    for (let i = 0; i < 40; i++) log.append(Buffer.from(`${'\u0001'.repeat(5000)}${'é€'.repeat(1500)}\n`));
    log.append(Buffer.from(line.slice(0, 300_000)));
    log.close();

    for (const lines of [200, 100_000]) {
      const tail = log.tail(lines);
      const frame = replyFrame(tail);
      expect(Buffer.byteLength(frame)).toBeLessThanOrEqual(MAX_FRAME_BYTES);
      expect(Buffer.byteLength(JSON.stringify(tail.lines))).toBeLessThanOrEqual(CONSOLE_TAIL_MAX_BYTES);
      // What a client's framer makes of it: one frame, not an oversized one, and a valid tail.
      const [event] = new LineFramer().push(Buffer.from(frame));
      expect(event?.type).toBe('frame');
      const parsed = VmConsoleTail.parse(
        (JSON.parse(event?.type === 'frame' ? event.text : '{}') as { result: unknown }).result,
      );
      expect(parsed.truncated).toBe(true);
      expect(parsed.lines.length).toBeGreaterThan(10);
      expect(parsed.lines.every((l) => l.length <= CONSOLE_LINE_MAX_CHARS)).toBe(true);
      // The newest output is what is kept: the open last line's pieces, whole, at the end.
      const last = cutConsoleLine(line.slice(0, 300_000));
      expect(parsed.lines.slice(-last.length)).toEqual(last);
    }
    // Without the budget the same log makes a frame far over the cap (what made `firedeckd console` hang).
    expect(Buffer.byteLength(replyFrame(log.tail(100_000, Number.POSITIVE_INFINITY)))).toBeGreaterThan(MAX_FRAME_BYTES);
  });

  it('counts a cut line by its pieces against the number of lines asked for', () => {
    const log = new ConsoleLog(path.join(dir, 'console.log'), 1 << 20);
    log.append(Buffer.from(`a\n${'x'.repeat(CONSOLE_LINE_MAX_CHARS * 2 + 5)}\r\n`));
    log.close();
    expect(log.tail(3)).toEqual({
      lines: ['x'.repeat(CONSOLE_LINE_MAX_CHARS), 'x'.repeat(CONSOLE_LINE_MAX_CHARS), 'xxxxx'],
      truncated: true,
    });
    expect(log.tail(4).truncated).toBe(false);
  });
});
