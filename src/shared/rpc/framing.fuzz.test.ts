import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { LineFramer, OVERSIZED_HEAD_CHARS, type FrameEvent } from './framing';
import { splitBytes } from '../testing/splitBytes';

/** Bad-input suite (issue 17): a soak run asks for more cases with FIREDECK_FUZZ_RUNS. */
const RUNS = Number(process.env.FIREDECK_FUZZ_RUNS ?? 10_000);
const MAX = 64;

function pushAll(framer: LineFramer, chunks: Uint8Array[]): FrameEvent[] {
  return chunks.flatMap((c) => framer.push(c));
}

/** Text as UTF-8 carries it (lone surrogates become U+FFFD), so expectations match what the decoder yields. */
const utf8 = (s: string): string => new TextDecoder().decode(new TextEncoder().encode(s));
const line = fc
  .oneof(
    fc.string({ unit: 'binary', maxLength: 80 }),
    fc.string({ unit: fc.constantFrom('a', '{', '"', ' ', '\r', 'ż', '😀'), maxLength: 90 }),
  )
  .map((s) => utf8(s).replace(/\n/g, ''));

/** What one line becomes: the framer's contract, independent of how the bytes arrived. */
type Expected = { type: 'frame'; text: string } | { type: 'oversized'; line: string };
function expected(lines: string[]): Expected[] {
  return lines.flatMap((l): Expected[] => {
    if (l.length > MAX) return [{ type: 'oversized' as const, line: l }];
    const text = l.endsWith('\r') ? l.slice(0, -1) : l;
    return text.trim().length > 0 ? [{ type: 'frame' as const, text }] : [];
  });
}

describe('LineFramer under arbitrary input (fuzz)', () => {
  it('never throws on arbitrary byte chunks; every event is a bounded frame or a typed oversized report', () => {
    fc.assert(
      fc.property(fc.array(fc.uint8Array({ maxLength: 200 }), { maxLength: 20 }), (chunks) => {
        const framer = new LineFramer(MAX);
        for (const event of pushAll(framer, chunks)) {
          if (event.type === 'frame') {
            expect(event.text.length).toBeLessThanOrEqual(MAX);
            expect(event.text).not.toContain('\n');
            expect(event.text.trim()).not.toBe('');
          } else {
            expect(event.error.kind).toBe('frame_too_large');
            expect(event.head.length).toBeLessThanOrEqual(OVERSIZED_HEAD_CHARS);
          }
        }
      }),
      { numRuns: RUNS },
    );
  });

  it('yields the same frames however a stream of lines is split, and reports each oversized line once', () => {
    fc.assert(
      fc.property(fc.array(line, { maxLength: 12 }), fc.array(fc.nat(), { maxLength: 30 }), (lines, cuts) => {
        const bytes = new TextEncoder().encode(lines.map((l) => l + '\n').join(''));
        const whole = pushAll(new LineFramer(MAX), [bytes]);
        const pieces = pushAll(new LineFramer(MAX), splitBytes(bytes, cuts));
        const want = expected(lines);
        for (const got of [whole, pieces]) {
          expect(got.map((e) => e.type)).toEqual(want.map((e) => e.type));
          got.forEach((event, i) => {
            const w = want[i]!;
            if (event.type === 'frame' && w.type === 'frame') expect(event.text).toBe(w.text);
            if (event.type === 'oversized' && w.type === 'oversized') {
              expect(event.error.kind).toBe('frame_too_large');
              // Its start names the call: a prefix of the line, at least as long as what overflowed.
              expect(w.line.startsWith(event.head)).toBe(true);
              expect(event.head.length).toBeGreaterThanOrEqual(Math.min(OVERSIZED_HEAD_CHARS, MAX + 1));
            }
          });
        }
        // The framer resynchronises: a frame after the stream still arrives whole.
        const framer = new LineFramer(MAX);
        pushAll(framer, splitBytes(bytes, cuts));
        expect(framer.push(new TextEncoder().encode('{"ok":1}\n'))).toEqual([{ type: 'frame', text: '{"ok":1}' }]);
      }),
      { numRuns: RUNS },
    );
  });
});
