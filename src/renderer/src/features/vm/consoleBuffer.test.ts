import { describe, expect, it } from 'vitest';
import { ConsoleBuffer, MAX_LINE_CHARS } from './consoleBuffer';

const enc = new TextEncoder();

describe('console buffer', () => {
  it('joins lines across chunks, including a split UTF-8 character, and keeps the open line', () => {
    const b = new ConsoleBuffer();
    const bytes = enc.encode('boot ok ✓\nsecond li');
    b.push(bytes.subarray(0, 9)); // cuts the 3-byte check mark
    b.push(bytes.subarray(9));
    expect(b.length).toBe(2);
    expect(b.line(0)).toBe('boot ok ✓');
    expect(b.line(1)).toBe('second li');
    b.push(enc.encode('ne\r\n'));
    expect(b.line(1)).toBe('second line');
  });

  it('strips terminal escapes and carriage returns', () => {
    const b = new ConsoleBuffer();
    b.push(enc.encode('\u001b[0;32m  OK  \u001b[0m Started x\r\n\u001b]0;title\u0007plain\n'));
    expect([b.line(0), b.line(1)]).toEqual(['  OK   Started x', 'plain']);
  });

  it('drops the oldest lines past its cap and searches case-insensitively', () => {
    const b = new ConsoleBuffer(3);
    b.push(enc.encode('a\nFIREDECK-READY vm\nc\nd\nfiredeck-ready sshd\n'));
    expect(b.length).toBe(3);
    expect(b.droppedLines).toBe(2);
    expect(b.search('firedeck-ready')).toEqual([2]);
    expect(b.text()).toBe('c\nd\nfiredeck-ready sshd\n');
  });

  it('starts a line over at a carriage return, as a terminal redraws a progress bar', () => {
    const b = new ConsoleBuffer();
    b.push(enc.encode('fetch  10%\rfetch  20%\r'));
    expect(b.line(0)).toBe('fetch  20%');
    b.push(enc.encode('fetch 100%\r'));
    b.push(enc.encode('\ndone\r\n'));
    expect([b.length, b.line(0), b.line(1)]).toEqual([2, 'fetch 100%', 'done']);
  });

  it('cuts a line that never ends, so a console without newlines stays cheap and bounded', () => {
    const b = new ConsoleBuffer(10);
    const chunk = enc.encode('x'.repeat(1000));
    for (let i = 0; i < 100_000; i++) b.push(chunk); // 100 MB without one newline
    // Ten complete pieces are kept, and the open rest.
    expect(b.length).toBe(11);
    for (let i = 0; i < b.length; i++) expect(b.line(i).length).toBeLessThanOrEqual(MAX_LINE_CHARS);
    expect(b.line(10).length).toBe(100_000_000 % MAX_LINE_CHARS);
    expect(b.droppedLines).toBe(Math.floor(100_000_000 / MAX_LINE_CHARS) - 10);
  });
});
