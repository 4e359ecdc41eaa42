import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { classifyServerFrame } from './jsonrpc';

/** Bad-input suite (issue 17): a soak run asks for more cases with FIREDECK_FUZZ_RUNS. */
const RUNS = Number(process.env.FIREDECK_FUZZ_RUNS ?? 10_000);

describe('classifyServerFrame under arbitrary frames (fuzz)', () => {
  it('never throws on any JSON value or text, and answers what is not a request with a typed error', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.jsonValue().map((v) => JSON.stringify(v)),
          fc.string({ unit: 'binary' }),
        ),
        (text) => {
          const incoming = classifyServerFrame(text);
          if (incoming.type === 'invalid') expect([-32700, -32600]).toContain(incoming.error.code);
        },
      ),
      { numRuns: RUNS },
    );
  });

  it('refuses a batch (a JSON array) with one clear -32600 error, whatever it holds', () => {
    const request = fc.record({ jsonrpc: fc.constant('2.0'), id: fc.nat(), method: fc.constant('daemon.status') });
    fc.assert(
      fc.property(fc.array(fc.oneof(request, fc.jsonValue())), (batch) => {
        const incoming = classifyServerFrame(JSON.stringify(batch));
        expect(incoming).toMatchObject({ type: 'invalid', id: null });
        if (incoming.type !== 'invalid') return;
        expect(incoming.error.code).toBe(-32600);
        expect(incoming.error.message).toBe('Invalid Request: batches are not supported; send one request per line');
      }),
      { numRuns: RUNS },
    );
  });
});
