import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { splitBytes } from '../testing/splitBytes';
import {
  CHANNEL_HEADER_BYTES,
  ChannelFrame,
  ChannelFrameReader,
  encodeChannelFrame,
  MAX_CHANNEL_PAYLOAD,
  type ChannelFrameEvent,
  type ChannelFrameType,
} from './channel';

/** Bad-input suite (issue 17): a soak run asks for more cases with FIREDECK_FUZZ_RUNS. */
const RUNS = Number(process.env.FIREDECK_FUZZ_RUNS ?? 10_000);

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

const pushAll = (reader: ChannelFrameReader, chunks: Uint8Array[]): ChannelFrameEvent[] =>
  chunks.flatMap((c) => reader.push(c));

/** Frames as comparable text (a deep equality over 64 KiB payloads would dominate the run time). */
const show = (events: ChannelFrameEvent[]): string[] =>
  events.map((e) => (e.type === 'frame' ? `${e.frameType}:${Buffer.from(e.payload).toString('hex')}` : e.reason));
const showFrames = (frames: Array<{ type: number; payload: Uint8Array }>): string[] =>
  frames.map((f) => `${f.type}:${Buffer.from(f.payload).toString('hex')}`);

const frameType = fc.constantFrom(...(Object.values(ChannelFrame) as ChannelFrameType[]));
const frame = fc.record({
  type: frameType,
  payload: fc.oneof(
    { weight: 200, arbitrary: fc.uint8Array({ maxLength: 64 }) },
    {
      weight: 1,
      arbitrary: fc.constantFrom(MAX_CHANNEL_PAYLOAD, MAX_CHANNEL_PAYLOAD - 1).map((n) => new Uint8Array(n)),
    },
  ),
});

/** A header no reader may accept: an unknown type, or a length over the limit. */
const badHeader = fc.oneof(
  fc
    .tuple(
      fc.integer({ min: 0, max: 255 }).filter((t) => t < ChannelFrame.data || t > ChannelFrame.exit),
      fc.nat(),
    )
    .map(([t, len]) => [t, len] as const),
  fc
    .tuple(frameType, fc.integer({ min: MAX_CHANNEL_PAYLOAD + 1, max: 0xffffffff }))
    .map(([t, len]) => [t, len] as const),
);
function header(type: number, length: number): Uint8Array {
  const out = new Uint8Array(CHANNEL_HEADER_BYTES);
  out[0] = type;
  new DataView(out.buffer).setUint32(1, length >>> 0, false);
  return out;
}

describe('ChannelFrameReader under arbitrary input (fuzz)', () => {
  it('never throws on arbitrary byte chunks; frames are well-typed and bounded, an invalid report is last', () => {
    fc.assert(
      fc.property(fc.array(fc.uint8Array({ maxLength: 300 }), { maxLength: 20 }), (chunks) => {
        const reader = new ChannelFrameReader();
        const events: ChannelFrameEvent[] = [];
        for (const chunk of chunks) events.push(...reader.push(chunk));
        const invalid = events.findIndex((e) => e.type === 'invalid');
        if (invalid !== -1) {
          expect(invalid).toBe(events.length - 1);
          // Once broken it stays silent: nothing after the report is ever a frame.
          expect(reader.push(encodeChannelFrame(ChannelFrame.data, new Uint8Array([1])))).toEqual([]);
        }
        for (const e of events) {
          if (e.type === 'frame') {
            expect(e.frameType).toBeGreaterThanOrEqual(ChannelFrame.data);
            expect(e.frameType).toBeLessThanOrEqual(ChannelFrame.exit);
            expect(e.payload.length).toBeLessThanOrEqual(MAX_CHANNEL_PAYLOAD);
          } else expect(e.reason).toMatch(/^bad channel frame/);
        }
      }),
      { numRuns: RUNS },
    );
  });

  it('yields the same frames however a valid stream is split', () => {
    fc.assert(
      fc.property(fc.array(frame, { maxLength: 10 }), fc.array(fc.nat(), { maxLength: 30 }), (frames, cuts) => {
        const bytes = concat(frames.map((f) => encodeChannelFrame(f.type, f.payload)));
        const want = showFrames(frames);
        expect(show(pushAll(new ChannelFrameReader(), [bytes]))).toEqual(want);
        expect(show(pushAll(new ChannelFrameReader(), splitBytes(bytes, cuts)))).toEqual(want);
      }),
      { numRuns: RUNS },
    );
  });

  it('reports an oversized or unknown frame once, after the valid frames before it, however it is split', () => {
    fc.assert(
      fc.property(
        fc.array(frame, { maxLength: 5 }),
        badHeader,
        fc.uint8Array({ maxLength: 100 }),
        fc.array(fc.nat(), { maxLength: 20 }),
        (frames, [type, length], tail, cuts) => {
          const bytes = concat([
            ...frames.map((f) => encodeChannelFrame(f.type, f.payload)),
            header(type, length),
            tail,
          ]);
          const events = pushAll(new ChannelFrameReader(), splitBytes(bytes, cuts));
          expect(show(events.slice(0, -1))).toEqual(showFrames(frames));
          expect(events.at(-1)).toEqual({
            type: 'invalid',
            reason: `bad channel frame (type ${type}, ${length} bytes)`,
          });
        },
      ),
      { numRuns: RUNS },
    );
  });
});
