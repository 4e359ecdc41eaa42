import { describe, expect, it } from 'vitest';
import { LineFramer } from './framing';

describe('LineFramer', () => {
  it('reassembles frames split across chunks, including multi-byte characters', () => {
    const framer = new LineFramer();
    const bytes = new TextEncoder().encode('{"a":"żółw"}\n{"b":1}\n');
    const out = [
      ...framer.push(bytes.slice(0, 9)),
      ...framer.push(bytes.slice(9, 15)),
      ...framer.push(bytes.slice(15)),
    ];
    expect(out).toEqual([
      { type: 'frame', text: '{"a":"żółw"}' },
      { type: 'frame', text: '{"b":1}' },
    ]);
  });

  it('skips an oversized frame once and resynchronises at its newline', () => {
    const framer = new LineFramer(10);
    const a = framer.push('x'.repeat(25));
    const b = framer.push('yyy\n{"ok":1}\n');
    expect(a.map((e) => e.type)).toEqual(['oversized']);
    expect(b).toEqual([{ type: 'frame', text: '{"ok":1}' }]);
  });

  it("keeps an oversized frame's start, whole or in pieces, so a client can tell which call it answered", () => {
    const whole = new LineFramer(10).push('{"id":7,"result":"0123456789"}\n');
    expect(whole).toMatchObject([{ type: 'oversized', head: '{"id":7,"result":"0123456789"}' }]);
    const framer = new LineFramer(10);
    expect(framer.push('{"id":8,')).toEqual([]);
    expect(framer.push('"result":1')).toMatchObject([{ type: 'oversized', head: '{"id":8,"result":1' }]);
  });

  it('ignores blank lines and strips CR', () => {
    expect(new LineFramer().push('\n\r\n{"a":1}\r\n')).toEqual([{ type: 'frame', text: '{"a":1}' }]);
  });
});
