import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LineFramer } from '../../../src/shared/rpc/framing';
import { methods, type MethodName } from '../../../src/shared/protocol/methods';
import { RpcServer } from './server';
import { validParams } from './testing/exchange';

/** Bad-input suite (issue 17): a soak run asks for more cases with FIREDECK_FUZZ_RUNS. */
const RUNS = Number(process.env.FIREDECK_FUZZ_RUNS ?? 10_000);

const METHODS = Object.keys(methods) as MethodName[];

/** One connection kept open for every case: requests go out one at a time, each answer is matched by id. */
class Client {
  private readonly framer = new LineFramer(64 * 1024 * 1024);
  private readonly waiting = new Map<number, (frame: Record<string, unknown>) => void>();
  private nextId = 1;

  constructor(private readonly socket: net.Socket) {
    socket.on('data', (chunk: Buffer) => {
      for (const ev of this.framer.push(chunk)) {
        if (ev.type !== 'frame') throw new Error(`unexpected ${ev.type} from the server`);
        const frame = JSON.parse(ev.text) as Record<string, unknown>;
        const resolve = this.waiting.get(frame.id as number);
        if (!resolve) throw new Error(`answer to no request: ${ev.text.slice(0, 200)}`);
        this.waiting.delete(frame.id as number);
        resolve(frame);
      }
    });
  }

  static open(at: string): Promise<Client> {
    return new Promise((resolve, reject) => {
      const socket = net.connect(at);
      socket.once('connect', () => resolve(new Client(socket)));
      socket.once('error', reject);
    });
  }

  /** Sends one request; `params` undefined leaves the member out. Settles with its answer. */
  call(method: string, params: unknown): Promise<{ id: number; frame: Record<string, unknown> }> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.waiting.set(id, (frame) => resolve({ id, frame }));
      this.socket.write(JSON.stringify({ jsonrpc: '2.0', id, method, params }) + '\n', (err) => err && reject(err));
    });
  }

  close(): void {
    this.socket.end();
  }
}

let dir: string;
let server: RpcServer;
let client: Client;
/** Params each handler was called with, by request id (the handler echoes the id it is told back). */
const received: { method: MethodName; params: unknown }[] = [];

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'firedeck-paramfuzz-'));
  const at = path.join(dir, 'd.sock');
  server = new RpcServer();
  for (const m of METHODS) {
    server.register(m, (params) => {
      received.push({ method: m, params });
      // Not the method's result shape: this test reads only what the handler got, and the server does not check.
      return { echoed: params } as never;
    });
  }
  await server.listen(at, 0o600);
  client = await Client.open(at);
});

afterAll(async () => {
  client.close();
  await server.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

/** A value of another JSON type than `value` has. */
function wrongTypeFor(value: unknown): fc.Arbitrary<unknown> {
  const all: fc.Arbitrary<unknown>[] = [
    fc.string(),
    fc.double({ noNaN: true, noDefaultInfinity: true }),
    fc.boolean(),
    fc.constant(null),
    fc.array(fc.jsonValue(), { maxLength: 3 }),
    fc.dictionary(fc.string(), fc.jsonValue(), { maxKeys: 3 }),
  ];
  const kind = Array.isArray(value) ? 4 : value === null ? 3 : ['string', 'number', 'boolean'].indexOf(typeof value);
  const other = all.filter((_, i) => i !== (kind === -1 ? 5 : kind));
  return fc.oneof(...other);
}

/** Each method's valid params with one thing wrong: an extra key, a field of the wrong type, a missing field. */
const mutated: fc.Arbitrary<{ method: MethodName; params: unknown; field?: string }> = fc
  .constantFrom(...METHODS)
  .chain((method) => {
    const valid = validParams[method];
    const keys = Object.keys(valid);
    // Each case names the field it changed, which a refusal's issues must name.
    const choices: fc.Arbitrary<{ params: unknown; field: string }>[] = [
      fc
        .tuple(fc.string({ minLength: 1, maxLength: 20 }), fc.jsonValue())
        .map(([k, v]) => ({ params: { ...valid, [k]: v }, field: k })),
    ];
    if (keys.length > 0) {
      const key = fc.constantFrom(...keys);
      choices.push(key.chain((k) => wrongTypeFor(valid[k]).map((v) => ({ params: { ...valid, [k]: v }, field: k }))));
      choices.push(
        key.map((k) => ({ params: Object.fromEntries(Object.entries(valid).filter(([n]) => n !== k)), field: k })),
      );
    }
    return fc.oneof(...choices).map((c) => ({ method, ...c }));
  });

/** Arbitrary params, including none at all (the member left out) and non-objects. */
const arbitrary: fc.Arbitrary<{ method: MethodName; params: unknown; field?: string }> = fc.record({
  method: fc.constantFrom(...METHODS),
  params: fc.oneof(fc.jsonValue(), fc.constant(undefined)),
});

describe('RpcServer params under arbitrary and near-valid input (fuzz)', () => {
  it('holds valid params for every method in the shared table', () => {
    for (const m of METHODS) expect(methods[m].params.safeParse(validParams[m]).success, m).toBe(true);
  });

  it('runs a handler only with params that pass the schema; anything else is -32602 naming the issues', async () => {
    const started = Date.now();
    let handled = 0;
    let refused = 0;
    await fc.assert(
      fc.asyncProperty(fc.oneof(arbitrary, mutated), async ({ method, params, field }) => {
        const before = received.length;
        const { id, frame } = await client.call(method, params);
        expect(frame.id).toBe(id);
        const ran = received.slice(before);
        if ('result' in frame) {
          handled++;
          expect(ran).toHaveLength(1);
          expect(ran[0]!.method).toBe(method);
          expect(methods[method].params.safeParse(ran[0]!.params).success).toBe(true);
          return;
        }
        refused++;
        expect(ran).toEqual([]);
        expect(methods[method].params.safeParse(params ?? {}).success).toBe(false);
        const error = frame.error as {
          code: number;
          data: { kind: string; details: { issues: { path: string; keys?: string[] }[] } };
        };
        expect(error.code).toBe(-32602);
        expect(error.data.kind).toBe('invalid_params');
        expect(error.data.details.issues.length).toBeGreaterThan(0);
        for (const issue of error.data.details.issues) {
          expect(issue).toMatchObject({ path: expect.any(String), message: expect.any(String) });
        }
        if (field !== undefined) {
          const named = error.data.details.issues.some(
            (i) => i.path.split('.')[0] === field || (i.keys ?? []).includes(field),
          );
          expect(named, `issues name ${field}: ${JSON.stringify(error.data.details.issues)}`).toBe(true);
        }
      }),
      { numRuns: RUNS },
    );
    // Both outcomes must be common, or the property says little.
    expect(handled).toBeGreaterThan(RUNS / 100);
    expect(refused).toBeGreaterThan(RUNS / 10);
    console.log(`params fuzz: ${RUNS} runs (${handled} handled, ${refused} refused) in ${Date.now() - started} ms`);

    const { frame } = await client.call('daemon.info', {});
    expect(frame).toMatchObject({ result: { echoed: {} } });
  }, 120_000);
});
