import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ConsoleLog } from './consoleLog';

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
});
