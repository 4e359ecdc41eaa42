import { randomBytes } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FiredeckError, errorCodes } from '../../../src/shared/errors';
import { AgentClient, AgentStatus, scrubAgentText } from './agentClient';

/** Bad-input suite (issue 17): a soak run asks for more cases with FIREDECK_FUZZ_RUNS. Real HTTP: fewer runs. */
const RUNS = Math.max(1, Math.round(Number(process.env.FIREDECK_FUZZ_RUNS ?? 10_000) / 5));

const TOKEN = `vm-token-${randomBytes(16).toString('base64url')}`;
const B64URL = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';

/** What a credential, a code or a token looks like; an error must never carry one. */
const secret = fc
  .tuple(
    fc.constantFrom('sk-ant-oat01-', 'ya29.', 'ghp_', 'eyJhbGciOi', ''),
    fc.string({ unit: fc.constantFrom(...B64URL), minLength: 24, maxLength: 48 }),
  )
  .map(([prefix, body]) => prefix + body);

const STATES = ['idle', 'starting', 'awaiting_user', 'captured', 'delivered', 'failed', 'bogus'];
const PROVIDERS = ['codex', 'claude_code', 'gemini_cli', 'selftest', 'nope'];

/** A field value: often right, often wrong, often a secret (alone or inside text). */
const value = (right: fc.Arbitrary<unknown>, secrets: string[]): fc.Arbitrary<unknown> =>
  fc.oneof(
    { weight: 16, arbitrary: right },
    fc.jsonValue({ maxDepth: 2 }),
    fc.constantFrom(...secrets),
    fc.constantFrom(...secrets).map((s) => `failed: ${s}\nsee log`),
    fc.constant(undefined),
  );

const stringOrNull = fc.oneof(fc.string({ maxLength: 30 }), fc.constant(null));

/** Answers shaped like the agent's, each field possibly wrong or secret, plus arbitrary JSON and non-JSON. */
function answerBody(op: Case['op'], secrets: string[]): fc.Arbitrary<string> {
  const v = (right: fc.Arbitrary<unknown>): fc.Arbitrary<unknown> => value(right, secrets);
  const shapes = [
    fc.record({ status: v(fc.constant('ok')), vmId: v(fc.string()), startedAt: v(fc.string()) }),
    fc.record({
      provider: v(fc.constantFrom(...PROVIDERS)),
      state: v(fc.constantFrom(...STATES)),
      url: v(stringOrNull),
    }),
    fc.record({
      provider: v(fc.constantFrom(...PROVIDERS, null)),
      state: v(fc.constantFrom(...STATES)),
      url: v(stringOrNull),
      error: v(stringOrNull),
      exitCode: v(fc.oneof(fc.integer(), fc.constant(null))),
    }),
    fc.record({
      provider: v(fc.constantFrom(...PROVIDERS)),
      capturedAt: v(fc.string()),
      files: v(
        fc.array(
          fc.record({
            path: v(fc.string({ maxLength: 40 })),
            contentBase64: v(fc.base64String({ maxLength: 64 })),
            mode: v(fc.integer({ min: -1, max: 0o10000 })),
          }),
          { maxLength: 9 },
        ),
      ),
    }),
    fc.record({ error: v(fc.string({ maxLength: 40 })) }),
  ];
  // The shape the call expects, most often; any other shape sometimes.
  const own = { health: 0, startLogin: 1, waitForUrl: 1, status: 2, waitForState: 2, takeCredential: 3 }[op];
  const shaped = fc.oneof({ weight: 4, arbitrary: shapes[own]! }, ...shapes);
  return fc.oneof(
    { weight: 6, arbitrary: shaped.map((o) => JSON.stringify(o)) },
    fc.jsonValue().map((j) => JSON.stringify(j)),
    fc.string({ maxLength: 80 }),
    fc.constantFrom(...secrets),
    fc.constant(''),
    fc.constant('null'),
  );
}

type Delivery = 'whole' | 'broken-off' | 'no-length' | 'garbage' | 'echo-token';

interface Case {
  op: 'health' | 'startLogin' | 'waitForUrl' | 'status' | 'waitForState' | 'takeCredential';
  status: number;
  body: string;
  delivery: Delivery;
  secrets: string[];
}

const OPS: Case['op'][] = ['health', 'startLogin', 'waitForUrl', 'status', 'waitForState', 'takeCredential'];
const aCase: fc.Arbitrary<Case> = fc
  .tuple(fc.constantFrom(...OPS), fc.array(secret, { minLength: 1, maxLength: 3 }))
  .chain(([op, secrets]) =>
    fc.record({
      op: fc.constant(op),
      status: fc.oneof(
        { weight: 10, arbitrary: fc.constant(200) },
        fc.constantFrom(201, 204, 400, 401, 404, 409, 410, 500, 503),
      ),
      body: answerBody(op, secrets),
      delivery: fc.oneof(
        { weight: 6, arbitrary: fc.constant<Delivery>('whole') },
        fc.constantFrom<Delivery>('broken-off', 'no-length', 'garbage', 'echo-token'),
      ),
      secrets: fc.constant(secrets),
    }),
  );

let server: http.Server;
let port = 0;
let current: Case | null = null;
/** Requests in this case: the first gets the case's answer, later ones (a long poll going on) a 500. */
let served = 0;

beforeAll(async () => {
  server = http.createServer((req, res) => {
    req.resume();
    req.once('end', () => {
      const c = current;
      if (c === null || served++ > 0) {
        res.writeHead(500, { 'content-type': 'application/json' });
        res.end('{"error":"no more answers in this case"}');
        return;
      }
      const body = Buffer.from(c.body);
      switch (c.delivery) {
        case 'whole':
          res.writeHead(c.status, { 'content-type': 'application/json', 'content-length': body.length });
          res.end(body);
          return;
        case 'no-length':
          res.writeHead(c.status, { 'content-type': 'application/json' });
          res.end(body);
          return;
        case 'broken-off':
          res.writeHead(c.status, { 'content-length': body.length + 100 });
          res.write(body, () => res.socket?.destroy());
          return;
        case 'garbage':
          req.socket.end(Buffer.concat([Buffer.from(`HTTP/1.1 ${c.status} \u0001${c.secrets[0]}\r\n`), body]));
          return;
        case 'echo-token':
          res.writeHead(c.status === 200 ? 401 : c.status, { 'content-type': 'application/json' });
          res.end(JSON.stringify({ error: `bad token ${req.headers.authorization ?? ''} (${c.secrets[0]})` }));
          return;
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  port = (server.address() as AddressInfo).port;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});

async function drive(op: Case['op']): Promise<unknown> {
  const client = new AgentClient({ vmName: 'fuzz-browser', address: '127.0.0.1', token: TOKEN, port });
  const signal = new AbortController().signal;
  switch (op) {
    case 'health':
      return client.health();
    case 'startLogin':
      return client.startLogin('claude_code');
    case 'waitForUrl':
      return client.waitForUrl('claude_code', signal);
    case 'status':
      return client.status();
    case 'waitForState':
      return client.waitForState(['captured', 'failed'], signal);
    case 'takeCredential':
      return client.takeCredential();
  }
}

describe('AgentClient under arbitrary answers from a guest (fuzz)', () => {
  it('scrubs the token and token-like runs from a guest text', () => {
    expect(scrubAgentText(`no ${TOKEN} here`, TOKEN)).toBe('no [redacted] here');
    // secret-scan: allow a made-up key in the text the scrubber must blank
    expect(scrubAgentText('code: sk-ant-oat01-abcdefghijklmnopqrstuvwxyz ok', TOKEN)).toBe('code: [redacted] ok');
    expect(scrubAgentText('provider not known', TOKEN)).toBe('provider not known');
  });

  it('answers or fails with a typed error that carries no secret, never hanging', async () => {
    const started = Date.now();
    let answered = 0;
    let failed = 0;
    await fc.assert(
      fc.asyncProperty(aCase, async (c) => {
        current = c;
        served = 0;
        let result: unknown;
        let error: unknown = null;
        try {
          result = await drive(c.op);
        } catch (err) {
          error = err;
        } finally {
          current = null;
        }
        if (error === null) {
          answered++;
          if (c.op === 'status' || c.op === 'waitForState') expect(AgentStatus.safeParse(result).success).toBe(true);
          return;
        }
        failed++;
        expect(error, String(error)).toBeInstanceOf(FiredeckError);
        const e = error as FiredeckError;
        expect(Object.keys(errorCodes)).toContain(e.kind);
        const said = JSON.stringify({ message: e.message, hint: e.hint, details: e.details });
        expect(said).not.toContain(TOKEN);
        for (const s of c.secrets) expect(said, `error echoes a secret: ${said}`).not.toContain(s);
      }),
      { numRuns: RUNS, timeout: 10_000 },
    );
    expect(answered).toBeGreaterThan(RUNS / 100);
    expect(failed).toBeGreaterThan(RUNS / 10);
    console.log(
      `agent client fuzz: ${RUNS} runs (${answered} answered, ${failed} failed) in ${Date.now() - started} ms`,
    );
  }, 120_000);
});
