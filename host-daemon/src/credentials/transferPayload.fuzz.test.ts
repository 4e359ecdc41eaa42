import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { FiredeckError, errorCodes } from '../../../src/shared/errors';
import { PROVIDERS, type ProviderName } from '../../../src/shared/protocol/providers';
import { Secret } from './secret';
import {
  GUEST_HOME,
  mergeJsonCompanion,
  scrubOutput,
  validatePayload,
  type CapturedFile,
  type CredentialPayload,
} from './transferPayload';

/** Bad-input suite (issue 17): a soak run asks for more cases with FIREDECK_FUZZ_RUNS. */
const RUNS = Number(process.env.FIREDECK_FUZZ_RUNS ?? 10_000);

const SPECS = Object.values(PROVIDERS);
const TABLE_PATHS = SPECS.flatMap((s) => [s.credential.path, ...s.companions.map((c) => c.path)]);
const FIELDS = [...new Set(SPECS.flatMap((s) => s.credential.requiredFields))];
const B64URL = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';

/** A credential-looking value; an error must never carry one. */
const secret = fc
  .tuple(
    fc.constantFrom('sk-ant-oat01-', 'ya29.', '1//0g', 'rt-', ''),
    fc.string({ unit: fc.constantFrom(...B64URL), minLength: 24, maxLength: 48 }),
  )
  .map(([prefix, body]) => prefix + body);

/** JSON nested `depth` deep (a parser takes it; a recursive walk or JSON.stringify may not). */
const deep = fc
  .tuple(fc.integer({ min: 1, max: 30_000 }), fc.constantFrom('[', '{"a":'), secret)
  .map(([depth, open, s]) => `{"tokens":${open.repeat(depth)}"${s}"${(open === '[' ? ']' : '}').repeat(depth)}}`);

/** File content: objects with (some of) the table's fields and secret values, arbitrary JSON, text, deep JSON. */
const contentText = (secrets: string[]): fc.Arbitrary<string> =>
  fc.oneof(
    {
      weight: 5,
      arbitrary: fc
        .dictionary(
          fc.oneof(
            fc.constantFrom(...FIELDS, 'claudeAiOauth', '__proto__', 'constructor'),
            fc.string({ maxLength: 8 }),
          ),
          fc.oneof(
            fc.constantFrom(...secrets),
            fc.jsonValue({ maxDepth: 2 }),
            fc.constant({ accessToken: secrets[0] }),
          ),
          { maxKeys: 7 },
        )
        .map((o) => JSON.stringify(o)),
    },
    fc.jsonValue().map((v) => JSON.stringify(v)),
    fc.string({ maxLength: 60 }).map((t) => `${t}${secrets[0]}`),
    fc.constantFrom(...secrets).map((s) => `{"tokens": "${s}"`),
    deep,
  );

const capturedFile = (secrets: string[]): fc.Arbitrary<unknown> =>
  fc.oneof(
    {
      weight: 8,
      arbitrary: fc.record({
        path: fc.oneof({ weight: 6, arbitrary: fc.constantFrom(...TABLE_PATHS) }, fc.string({ maxLength: 30 })),
        content: fc.oneof(
          { weight: 8, arbitrary: contentText(secrets).map((t) => Secret.from(t)) },
          fc.constantFrom(...secrets),
          fc.constant(undefined),
        ),
        mode: fc.oneof(
          { weight: 4, arbitrary: fc.constant(0o600) },
          fc.integer({ min: -2, max: 0o10001 }),
          fc.double(),
        ),
      }),
    },
    fc.constant(null),
    fc.jsonValue({ maxDepth: 1 }),
  );

/** A provider's own payload (credential with its fields, some companions), then often one thing changed. */
const nearValid = (secrets: string[]): fc.Arbitrary<unknown> =>
  fc
    .constantFrom(...SPECS)
    .chain((spec) =>
      fc.record({
        provider: fc.constant(spec.name),
        extra: fc.dictionary(fc.string({ maxLength: 8 }), fc.constantFrom(...secrets), { maxKeys: 3 }),
        companions: fc.subarray([...spec.companions]),
        mutation: fc.oneof(
          { weight: 3, arbitrary: fc.constant(null) },
          fc.record({
            index: fc.nat(3),
            change: fc.constantFrom('path', 'content', 'mode', 'drop-field', 'duplicate'),
          }),
        ),
        body: contentText(secrets),
      }),
    )
    .map(({ provider, extra, companions, mutation, body }) => {
      const spec = PROVIDERS[provider];
      const fields = Object.fromEntries(spec.credential.requiredFields.map((f, i) => [f, secrets[i % secrets.length]]));
      const files: CapturedFile[] = [
        { path: spec.credential.path, content: Secret.from(JSON.stringify({ ...extra, ...fields })), mode: 0o600 },
        ...companions.map((c) => ({ path: c.path, content: Secret.from(JSON.stringify(extra)), mode: 0o644 })),
      ];
      if (mutation !== null) {
        const f = files[mutation.index % files.length]!;
        if (mutation.change === 'path') f.path = `${f.path}x`;
        if (mutation.change === 'content') f.content = Secret.from(body);
        if (mutation.change === 'mode') f.mode = 0o10000;
        if (mutation.change === 'drop-field') f.content = Secret.from(JSON.stringify(extra));
        if (mutation.change === 'duplicate') files.push({ ...f });
      }
      return { provider, files };
    });

const aPayload = fc.array(secret, { minLength: 1, maxLength: 3 }).chain((secrets) =>
  fc.record({
    secrets: fc.constant(secrets),
    payload: fc.oneof(
      { weight: 10, arbitrary: nearValid(secrets) },
      {
        weight: 10,
        arbitrary: fc.record({
          provider: fc.oneof(
            { weight: 8, arbitrary: fc.constantFrom(...SPECS.map((s) => s.name)) },
            fc.string({ maxLength: 12 }),
            fc.constant(undefined),
          ),
          files: fc.oneof({ weight: 8, arbitrary: fc.array(capturedFile(secrets), { maxLength: 4 }) }, fc.jsonValue()),
        }),
      },
      fc.jsonValue({ maxDepth: 1 }),
    ),
  }),
);

function parses(text: string): boolean {
  try {
    JSON.parse(text);
    return true;
  } catch {
    return false;
  }
}

/** The error a call threw, checked: a FiredeckError of the table, with no secret in anything it says. */
function checkRefusal(err: unknown, secrets: readonly string[]): FiredeckError {
  expect(err, String(err)).toBeInstanceOf(FiredeckError);
  const e = err as FiredeckError;
  expect(Object.keys(errorCodes)).toContain(e.kind);
  const said = JSON.stringify(e.toJSON());
  for (const s of secrets) expect(said, `error echoes a secret: ${said}`).not.toContain(s);
  return e;
}

describe('credential transfer payloads under arbitrary input (fuzz)', () => {
  it('validatePayload accepts only table files with JSON-object content, else a typed error naming no value', () => {
    const started = Date.now();
    let accepted = 0;
    let refused = 0;
    fc.assert(
      fc.property(aPayload, ({ payload, secrets }) => {
        let v: ReturnType<typeof validatePayload>;
        try {
          v = validatePayload(payload as CredentialPayload);
        } catch (err) {
          refused++;
          checkRefusal(err, secrets);
          return;
        }
        accepted++;
        const given = (payload as { provider: ProviderName; files: CapturedFile[] }).files;
        expect(v.spec).toBe(PROVIDERS[(payload as { provider: ProviderName }).provider]);
        expect(v.files.map((f) => f.relative)).toEqual(given.map((f) => f.path));
        expect(v.files[0]!.merge).toBeNull();
        for (const f of v.files) expect(f.guestPath).toBe(`${GUEST_HOME}/${f.relative}`);
      }),
      { numRuns: RUNS },
    );
    expect(accepted).toBeGreaterThan(RUNS / 100);
    expect(refused).toBeGreaterThan(RUNS / 10);
    console.log(`payload fuzz: ${RUNS} runs (${accepted} accepted, ${refused} refused) in ${Date.now() - started} ms`);
  }, 60_000);

  it('mergeJsonCompanion gives a JSON object with the captured keys, or a typed error naming no value', () => {
    const started = Date.now();
    let merged = 0;
    let refused = 0;
    fc.assert(
      fc.property(
        fc
          .array(secret, { minLength: 1, maxLength: 3 })
          .chain((secrets) =>
            fc.tuple(fc.constant(secrets), fc.oneof(fc.constant(null), contentText(secrets)), contentText(secrets)),
          ),
        ([secrets, current, captured]) => {
          let out: Secret;
          try {
            out = mergeJsonCompanion(
              current === null ? null : Secret.from(current),
              Secret.from(captured),
              `${GUEST_HOME}/.claude.json`,
            );
          } catch (err) {
            refused++;
            const e = checkRefusal(err, secrets);
            expect(e.message).toContain('.claude.json');
            return;
          }
          merged++;
          if (current === null) {
            expect(out.text()).toBe(captured);
            return;
          }
          const result = JSON.parse(out.text()) as Record<string, unknown>;
          const incoming = JSON.parse(captured) as Record<string, unknown>;
          for (const k of Object.keys(incoming)) expect(Object.prototype.hasOwnProperty.call(result, k)).toBe(true);
        },
      ),
      { numRuns: RUNS },
    );
    expect(merged).toBeGreaterThan(RUNS / 100);
    expect(refused).toBeGreaterThan(RUNS / 100);
    console.log(`merge fuzz: ${RUNS} runs (${merged} merged, ${refused} refused) in ${Date.now() - started} ms`);
  }, 60_000);

  it('scrubOutput never throws and leaves none of the files’ string values in the output', () => {
    fc.assert(
      fc.property(
        fc
          .array(secret, { minLength: 1, maxLength: 3 })
          .chain((secrets) =>
            fc.tuple(
              fc.constant(secrets),
              fc.array(contentText(secrets), { maxLength: 3 }),
              fc.array(fc.oneof(fc.constantFrom(...secrets), fc.string({ maxLength: 20 })), { maxLength: 6 }),
            ),
          ),
        ([secrets, files, words]) => {
          const out = scrubOutput(
            words.join(' '),
            files.map((t) => Secret.from(t)),
          );
          // Every secret that is a string value of one of the files (JSON ones: at the top or nested) is gone.
          for (const s of secrets) {
            if (files.some((t) => parses(t) && t.includes(`"${s}"`))) expect(out).not.toContain(s);
          }
        },
      ),
      { numRuns: Math.max(1, Math.round(RUNS / 5)) },
    );
  }, 60_000);
});
