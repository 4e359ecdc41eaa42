import { describe, expect, it } from 'vitest';
import { CONSOLE_LINE_MAX_CHARS } from '../../../shared/protocol/vm';
import { BuildLog } from './buildLog';

describe('BuildLog', () => {
  it('keeps at most maxLines, dropping the oldest and counting them', () => {
    const log = new BuildLog(3);
    for (let i = 0; i < 5; i++) log.push(`l${i}`);
    expect(log.tail(10)).toEqual(['l2', 'l3', 'l4']);
    expect(log.length).toBe(3);
    expect(log.droppedLines).toBe(2);
    expect(log.version).toBe(5);
  });

  it('cuts a long line into pieces, so one line cannot grow the buffer without bound', () => {
    const log = new BuildLog(10);
    log.push('x'.repeat(CONSOLE_LINE_MAX_CHARS * 2 + 1));
    expect(log.length).toBe(3);
    expect(log.tail(1)).toEqual(['x']);
    log.push('');
    expect(log.tail(1)).toEqual(['']);
  });

  it('starts over from a snapshot: its tail, the lines before it counted as dropped', () => {
    const log = new BuildLog(2);
    log.push('old');
    log.reset(['a', 'b', 'c'], 10);
    expect(log.tail(5)).toEqual(['b', 'c']);
    expect(log.droppedLines).toBe(11);
  });
});
