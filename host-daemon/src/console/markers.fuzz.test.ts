import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MarkerScanner, parseMarker } from './markers';

/** Bad-input suite (issue 17): a soak run asks for more cases with FIREDECK_FUZZ_RUNS. */
const RUNS = Number(process.env.FIREDECK_FUZZ_RUNS ?? 10_000);

const ALGORITHMS = ['ssh-ed25519', 'ecdsa-sha2-nistp256', 'ecdsa-sha2-nistp384', 'ecdsa-sha2-nistp521', 'ssh-rsa'];
const WELL_FORMED_KEY = /^(ssh-ed25519|ecdsa-sha2-nistp(256|384|521)|ssh-rsa) [A-Za-z0-9+/]{16,8192}={0,3}$/;
const B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';

const base64 = fc
  .tuple(fc.string({ unit: fc.constantFrom(...B64), minLength: 16, maxLength: 600 }), fc.integer({ min: 0, max: 3 }))
  .map(([body, pad]) => body + '='.repeat(pad));
/** Console lines: arbitrary text, and text built from the markers' own pieces so that near-misses are common. */
const token = fc.constantFrom(
  'FIREDECK-READY',
  'FIREDECK-HOSTKEY',
  ...ALGORITHMS,
  'ssh-dss',
  ' ',
  '\r',
  '\t',
  '\u001b[31m',
  '=',
  'vm',
  'sshd',
  'AAAAC3NzaC1lZDI1NTE5AAAA',
);
const consoleLine = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 200 }),
  fc.array(fc.oneof(token, base64, fc.string({ maxLength: 5 })), { maxLength: 8 }).map((parts) => parts.join('')),
);

describe('console markers from guests under arbitrary lines (fuzz)', () => {
  it('parseMarker never throws and returns null or a marker of the contract; a host key only when well-formed', () => {
    fc.assert(
      fc.property(consoleLine, (line) => {
        const m = parseMarker(line);
        if (m === null) return;
        if (m.type === 'ready') expect(m.what).toMatch(/^[a-z][a-z0-9-]{0,31}$/);
        else expect(m.key).toMatch(WELL_FORMED_KEY);
      }),
      { numRuns: RUNS },
    );
  });

  it('accepts a well-formed FIREDECK-HOSTKEY line, with console noise around it, as exactly that key', () => {
    fc.assert(
      fc.property(
        fc.constantFrom('', '[   12.3] ', 'rc: ', '\u001b[0m'),
        fc.constantFrom(...ALGORITHMS),
        base64,
        fc.constantFrom('', ' ', '\r', ' \r'),
        (prefix, algorithm, key, suffix) => {
          expect(parseMarker(`${prefix}FIREDECK-HOSTKEY ${algorithm} ${key}${suffix}`)).toEqual({
            type: 'hostkey',
            key: `${algorithm} ${key}`,
          });
        },
      ),
      { numRuns: RUNS },
    );
  });

  it('refuses a FIREDECK-HOSTKEY line whose key is malformed (a foreign character, too short, or extra text)', () => {
    const foreign = fc.constantFrom('!', '-', '_', '.', '"', ';', '\u0000', 'ż', '*');
    fc.assert(
      fc.property(
        fc.constantFrom(...ALGORITHMS),
        base64,
        fc.oneof(
          fc.tuple(foreign, fc.nat()).map(([c, at]) => (key: string) => {
            const i = at % key.length;
            return key.slice(0, i) + c + key.slice(i);
          }),
          fc.constant((key: string) => key.replace(/=+$/, '').slice(0, 15)),
          fc.constant((key: string) => `${key} trailing`),
          fc.constant((key: string) => `${key}====`),
        ),
        (algorithm, key, corrupt) => {
          expect(parseMarker(`FIREDECK-HOSTKEY ${algorithm} ${corrupt(key)}`)).toBeNull();
        },
      ),
      { numRuns: RUNS },
    );
  });

  it('MarkerScanner never throws on arbitrary bytes, finds only contract markers, and keeps its last lines printable', () => {
    fc.assert(
      fc.property(fc.array(fc.uint8Array({ maxLength: 300 }), { maxLength: 10 }), (chunks) => {
        const scanner = new MarkerScanner(256, 5);
        for (const chunk of chunks) {
          for (const m of scanner.push(chunk)) {
            if (m.type === 'hostkey') expect(m.key).toMatch(WELL_FORMED_KEY);
          }
        }
        const lines = scanner.lastLines();
        expect(lines.length).toBeLessThanOrEqual(6);
        // eslint-disable-next-line no-control-regex
        for (const l of lines) expect(l).not.toMatch(/[\u0000-\u0008\u000a-\u001f\u007f-\u009f]/);
      }),
      { numRuns: RUNS },
    );
  });
});
