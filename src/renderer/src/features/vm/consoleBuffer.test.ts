import { describe, expect, it } from 'vitest';
import { ConsoleBuffer } from './consoleBuffer';

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
});
