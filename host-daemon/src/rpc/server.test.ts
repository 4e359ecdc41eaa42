import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FiredeckError } from '../../../src/shared/errors';
import { LineFramer } from '../../../src/shared/rpc/framing';
import { methods, type MethodName } from '../../../src/shared/protocol/methods';
import { userName } from '../system/users';
import { MAX_CALLS_IN_FLIGHT, RpcServer, type CallRecord } from './server';
import { exchangeAt, validParams } from './testing/exchange';

/** This test process as the kernel names it: the caller of every connection it opens. */
const me = { user: userName(process.getuid!()) ?? String(process.getuid!()), uid: process.getuid!() };

let dir: string;
let socketPath: string;
let server: RpcServer;
const audited: CallRecord[] = [];
/** A server with a handler for every mutating method that records when it runs: none should, for bad params. */
let strictServer: RpcServer;
let strictSocket: string;
const ran: string[] = [];
const serverLog: string[] = [];
/** Sends raw text and returns the first `count` frames the server answers with. */
function exchange(text: string, count: number, at: string = socketPath): Promise<Record<string, unknown>[]> {
  return exchangeAt(at, text, count);
}

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'firedeck-rpc-'));
  socketPath = path.join(dir, 'd.sock');
  server = new RpcServer({ onMutatingCall: (r) => audited.push(r), log: (line) => serverLog.push(line) });
  server.register('daemon.info', () => ({
    version: '9.9.9',
    protocolVersion: 1,
    hostname: 'h',
    pid: 1,
    startedAt: new Date(0).toISOString(),
    drivers: [],
    defaultDriver: null,
  }));
  server.register('vm.get', ({ id }) => {
    throw new FiredeckError('not_found', `No VM ${id}`, { hint: 'vm.list shows the VMs' });
  });
  // A slow call: it answers only once the client has ended its side of the connection.
  server.register('vm.waitReady', async ({ id }, { connection }) => {
    await connection.inputEnded;
    throw new FiredeckError('timeout', `VM ${id} was not ready in time`);
  });
  server.register('vm.destroy', ({ id }) => {
    throw new FiredeckError('not_found', `No VM ${id}`);
  });
  await server.listen(socketPath, 0o600);

  strictServer = new RpcServer();
  for (const m of (Object.keys(methods) as MethodName[]).filter((n) => methods[n].mutating)) {
    strictServer.register(m, () => {
      ran.push(m);
      throw new FiredeckError('internal', 'must not run');
    });
  }
  strictSocket = path.join(dir, 'strict.sock');
  await strictServer.listen(strictSocket, 0o600);
});

afterAll(async () => {
  await strictServer.close();
  await server.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

describe('RpcServer (JSON-RPC 2.0 over a unix socket)', () => {
  it('answers a malformed frame with -32700 and keeps serving the same connection', async () => {
    const frames = await exchange('{not json\n{"jsonrpc":"2.0","id":7,"method":"daemon.info","params":{}}\n', 2);
    expect(frames[0]).toMatchObject({ jsonrpc: '2.0', id: null, error: { code: -32700 } });
    expect(frames[1]).toMatchObject({ id: 7, result: { version: '9.9.9' } });
  });

  it('answers an unknown method with -32601', async () => {
    const [f] = await exchange('{"jsonrpc":"2.0","id":1,"method":"vm.explode","params":{}}\n', 1);
    expect(f).toMatchObject({ id: 1, error: { code: -32601, data: { kind: 'method_not_found' } } });
  });

  it('answers bad params with -32602 naming the field', async () => {
    const [f] = await exchange('{"jsonrpc":"2.0","id":"a","method":"vm.get","params":{"id":"../etc"}}\n', 1);
    expect(f).toMatchObject({ id: 'a', error: { code: -32602 } });
    expect(JSON.stringify(f)).toContain('id');
  });

  it('refuses an unknown field on every mutating method with -32602 naming it, before any handler runs', async () => {
    const mutating = (Object.keys(methods) as MethodName[]).filter((m) => methods[m].mutating);
    // A new method must be added to `validParams`, so this test keeps covering all of them.
    expect(Object.keys(validParams).sort()).toEqual(Object.keys(methods).sort());
    for (const m of mutating) {
      expect(methods[m].params.safeParse(validParams[m]).success, `${m} params in this test`).toBe(true);
    }
    const requests = mutating.map((m, i) =>
      JSON.stringify({ jsonrpc: '2.0', id: i, method: m, params: { ...validParams[m], misspeltField: 1 } }),
    );
    const frames = await exchange(requests.join('\n') + '\n', mutating.length, strictSocket);
    for (const [i, m] of mutating.entries()) {
      const f = frames.find((fr) => fr.id === i)!;
      expect(f, m).toMatchObject({ error: { code: -32602, data: { kind: 'invalid_params' } } });
      const error = (f as { error: { message: string; data: { details: { issues: { keys?: string[] }[] } } } }).error;
      expect(error.message, m).toContain('misspeltField');
      expect(error.data.details.issues, m).toContainEqual(expect.objectContaining({ keys: ['misspeltField'] }));
    }
    expect(ran).toEqual([]);
  });

  it('declares every params object strict, reads as well as writes', () => {
    for (const m of Object.keys(methods) as MethodName[]) {
      const parsed = methods[m].params.safeParse({ misspeltField: 1 });
      expect(parsed.success, m).toBe(false);
      expect(parsed.error?.issues, m).toContainEqual(
        expect.objectContaining({ code: 'unrecognized_keys', keys: ['misspeltField'] }),
      );
    }
  });

  it('refuses vm.create with memoryMiB (the field is memoryMib) instead of creating a VM with default memory', async () => {
    const [f] = await exchange(
      '{"jsonrpc":"2.0","id":"m","method":"vm.create","params":{"name":"web","kind":"cli","owner":"alice","image":"test","memoryMiB":4096}}\n',
      1,
      strictSocket,
    );
    expect(f).toMatchObject({ id: 'm', error: { code: -32602 } });
    expect((f as { error: { message: string } }).error.message).toContain('memoryMiB');
    expect(ran).toEqual([]);
  });

  it('refuses a batch with one clear -32600 error and keeps serving the same connection', async () => {
    const batch = '[{"jsonrpc":"2.0","id":1,"method":"daemon.info","params":{}},{"jsonrpc":"2.0","method":"x"}]';
    const frames = await exchange(`${batch}\n{"jsonrpc":"2.0","id":2,"method":"daemon.info","params":{}}\n`, 2);
    expect(frames[0]).toMatchObject({
      id: null,
      error: { code: -32600, message: 'Invalid Request: batches are not supported; send one request per line' },
    });
    expect(frames[1]).toMatchObject({ id: 2, result: { version: '9.9.9' } });
  });

  it('answers a non-request object with -32600', async () => {
    const [f] = await exchange('{"jsonrpc":"1.0","id":3,"method":"daemon.info"}\n', 1);
    expect(f).toMatchObject({ id: 3, error: { code: -32600 } });
  });

  it('carries a handler error whole: kind, code and hint', async () => {
    const [f] = await exchange('{"jsonrpc":"2.0","id":4,"method":"vm.get","params":{"id":"vm-0000abcd"}}\n', 1);
    expect(f).toMatchObject({
      id: 4,
      error: { code: -32001, message: 'No VM vm-0000abcd', data: { kind: 'not_found', hint: 'vm.list shows the VMs' } },
    });
  });

  it('drops an oversized frame with frame_too_large and stays up', async () => {
    const big = `{"jsonrpc":"2.0","id":5,"method":"daemon.info","params":{"x":"${'a'.repeat(1_200_000)}"}}\n`;
    const frames = await exchange(`${big}{"jsonrpc":"2.0","id":6,"method":"daemon.info","params":{}}\n`, 2);
    expect(frames[0]).toMatchObject({ error: { code: -32007 } });
    expect(frames[1]).toMatchObject({ id: 6, result: { hostname: 'h' } });
  });

  it('ignores notifications (no response) and answers the request after them', async () => {
    const frames = await exchange(
      '{"jsonrpc":"2.0","method":"session.hello","params":{"user":"ops","uid":1000}}\n{"jsonrpc":"2.0","id":9,"method":"vm.destroy","params":{"id":"vm-0000abcd"}}\n',
      1,
    );
    expect(frames[0]).toMatchObject({ id: 9, error: { code: -32001 } });
    const last = audited.at(-1)!;
    expect(last).toMatchObject({ method: 'vm.destroy', ok: false, caller: me });
  });

  it('takes the caller from the kernel, not the hello: the claim is kept apart and logged, a later one ignored', async () => {
    const hello = (user: string, uid: number): string =>
      `{"jsonrpc":"2.0","method":"session.hello","params":{"user":"${user}","uid":${uid}}}\n`;
    const frames = await exchange(
      `${hello('ops', 1000)}${hello('mallory', 4242)}{"jsonrpc":"2.0","id":10,"method":"vm.destroy","params":{"id":"vm-0000abcd"}}\n`,
      1,
    );
    expect(frames[0]).toMatchObject({ id: 10 });
    expect(audited.at(-1)).toMatchObject({
      method: 'vm.destroy',
      caller: { ...me, gid: process.getgid!(), pid: process.pid, claimed: { user: 'ops', uid: 1000 } },
    });
    expect(serverLog).toContainEqual(
      `session.hello from ${me.user} (uid ${me.uid}, pid ${process.pid}) claims ops (uid 1000); recorded as ${me.user}`,
    );
    expect(serverLog.join('\n')).not.toContain('mallory');
  });

  it('serves nobody whose credentials the kernel does not give: the connection is closed, nothing runs', async () => {
    const lines: string[] = [];
    const calls: CallRecord[] = [];
    const blind = new RpcServer({
      peerCredentials: () => {
        throw new Error('getsockopt(SO_PEERCRED): Bad file descriptor');
      },
      onMutatingCall: (r) => calls.push(r),
      log: (line) => lines.push(line),
    });
    blind.register('vm.destroy', () => {
      throw new FiredeckError('internal', 'must not run');
    });
    const at = path.join(dir, 'blind.sock');
    await blind.listen(at, 0o600);
    try {
      const closed = await new Promise<string>((resolve, reject) => {
        const socket = net.connect(at);
        let got = '';
        socket.on('data', (chunk: Buffer) => (got += chunk.toString()));
        socket.once('connect', () =>
          socket.write('{"jsonrpc":"2.0","id":1,"method":"vm.destroy","params":{"id":"vm-0000abcd"}}\n'),
        );
        socket.once('close', () => resolve(got));
        // The server may close before the request is written: EPIPE or a reset is that same refusal.
        socket.once('error', (err: NodeJS.ErrnoException) =>
          err.code === 'EPIPE' || err.code === 'ECONNRESET' ? resolve(got) : reject(err),
        );
      });
      expect(closed).toBe('');
      expect(calls).toEqual([]);
      expect(lines).toHaveLength(1);
      expect(lines[0]).toMatch(/^refused a connection: no peer credentials: .*Bad file descriptor/);
    } finally {
      await blind.close();
    }
  });

  it('answers every call in flight after the client ends its side, then ends the connection (half-close)', async () => {
    const { frames, serverEnded } = await new Promise<{ frames: Record<string, unknown>[]; serverEnded: boolean }>(
      (resolve, reject) => {
        const socket = net.connect(socketPath);
        const framer = new LineFramer();
        const frames: Record<string, unknown>[] = [];
        let serverEnded = false;
        socket.on('data', (chunk: Buffer) => {
          for (const ev of framer.push(chunk)) if (ev.type === 'frame') frames.push(JSON.parse(ev.text));
        });
        socket.once('end', () => (serverEnded = true));
        socket.once('close', () => resolve({ frames, serverEnded }));
        socket.once('error', reject);
        socket.once('connect', () =>
          // Two slow calls and a fast one, then end of input at once, as `printf … | firedeckd dial-stdio` does.
          socket.end(
            '{"jsonrpc":"2.0","id":1,"method":"vm.waitReady","params":{"id":"vm-0000abcd"}}\n' +
              '{"jsonrpc":"2.0","id":2,"method":"vm.waitReady","params":{"id":"vm-0000beef"}}\n' +
              '{"jsonrpc":"2.0","id":3,"method":"daemon.info","params":{}}\n',
          ),
        );
      },
    );
    expect(frames.map((f) => f.id).sort()).toEqual([1, 2, 3]);
    expect(frames.find((f) => f.id === 1)).toMatchObject({
      error: { message: 'VM vm-0000abcd was not ready in time', data: { kind: 'timeout' } },
    });
    expect(frames.find((f) => f.id === 3)).toMatchObject({ result: { hostname: 'h' } });
    expect(serverEnded).toBe(true);
  });

  it('ends a connection whose client ended with nothing in flight', async () => {
    const ended = await new Promise<boolean>((resolve, reject) => {
      const socket = net.connect(socketPath);
      let serverEnded = false;
      socket.once('end', () => (serverEnded = true));
      socket.once('close', () => resolve(serverEnded));
      socket.once('error', reject);
      socket.once('connect', () => socket.end());
    });
    expect(ended).toBe(true);
  });

  it("refuses a call over the connection's cap on calls in flight with resource_exhausted; the others are answered", async () => {
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    let started = 0;
    const slow = new RpcServer();
    slow.register('vm.get', async ({ id }) => {
      started++;
      await gate;
      throw new FiredeckError('not_found', `No VM ${id}`);
    });
    const slowSocket = path.join(dir, 'slow.sock');
    await slow.listen(slowSocket, 0o600);
    try {
      const total = MAX_CALLS_IN_FLIGHT + 1;
      const text = Array.from(
        { length: total },
        (_, i) => `{"jsonrpc":"2.0","id":${i + 1},"method":"vm.get","params":{"id":"vm-0000abcd"}}\n`,
      ).join('');
      const frames = await new Promise<Record<string, unknown>[]>((resolve, reject) => {
        const socket = net.connect(slowSocket);
        const framer = new LineFramer();
        const got: Record<string, unknown>[] = [];
        socket.once('connect', () => socket.write(text));
        socket.on('data', (chunk: Buffer) => {
          for (const ev of framer.push(chunk)) {
            if (ev.type !== 'frame') continue;
            got.push(JSON.parse(ev.text) as Record<string, unknown>);
            // The refusal comes while the others still wait on the gate; only then are they let through.
            if (got.length === 1) release();
          }
          if (got.length >= total) {
            socket.end();
            resolve(got);
          }
        });
        socket.once('error', reject);
      });
      expect(frames[0]).toMatchObject({
        id: total,
        error: { code: -32008, data: { kind: 'resource_exhausted', details: { maxCallsInFlight: 64 } } },
      });
      expect((frames[0]!.error as { data: { hint: string } }).data.hint).toMatch(/Wait for answers/);
      expect(started).toBe(MAX_CALLS_IN_FLIGHT);
      const answered = frames.slice(1);
      expect(answered.map((f) => f.id).sort((a, b) => Number(a) - Number(b))).toEqual(
        Array.from({ length: MAX_CALLS_IN_FLIGHT }, (_, i) => i + 1),
      );
      for (const f of answered) expect(f).toMatchObject({ error: { data: { kind: 'not_found' } } });
    } finally {
      await slow.close();
    }
  });

  it('refuses to start over a live socket', async () => {
    const other = new RpcServer();
    await expect(other.listen(socketPath)).rejects.toMatchObject({ kind: 'conflict' });
  });
});

describe('idempotency keys on mutating calls', () => {
  const key = 'retry-key-0123456789';
  it('runs a call sent again with its key once, audits it once, and answers both alike', async () => {
    const before = audited.length;
    let runs = 0;
    server.register('proxy.clear', () => {
      runs++;
      return { configured: false, http: null, https: null, noProxy: [] };
    });
    const frame = (id: number): string =>
      JSON.stringify({ jsonrpc: '2.0', id, method: 'proxy.clear', params: {}, idempotencyKey: key }) + '\n';
    const [first] = await exchange(frame(1), 1);
    const [second] = await exchange(frame(2), 1);
    expect(first).toMatchObject({ id: 1, result: { configured: false } });
    expect(second).toMatchObject({ id: 2, result: first!.result });
    expect(runs).toBe(1);
    expect(audited.slice(before).map((r) => r.method)).toEqual(['proxy.clear']);
    expect(serverLog.some((l) => /proxy\.clear from .*sent again with its idempotency key; replayed/.test(l))).toBe(
      true,
    );
    // Without a key every call runs.
    await exchange('{"jsonrpc":"2.0","id":3,"method":"proxy.clear","params":{}}\n', 1);
    expect(runs).toBe(2);
  });

  it('refuses the key on another call, and a malformed key, naming the rule', async () => {
    const [reused] = await exchange(
      JSON.stringify({
        jsonrpc: '2.0',
        id: 4,
        method: 'vm.destroy',
        params: { id: 'vm-0000abcd' },
        idempotencyKey: key,
      }) + '\n',
      1,
    );
    expect(reused).toMatchObject({ id: 4, error: { data: { kind: 'invalid_params' } } });
    expect((reused!.error as { message: string }).message).toMatch(/used for another call \(proxy\.clear/);
    const [bad] = await exchange(
      '{"jsonrpc":"2.0","id":5,"method":"proxy.clear","params":{},"idempotencyKey":"short"}\n',
      1,
    );
    expect(bad).toMatchObject({ id: 5, error: { data: { kind: 'invalid_request' } } });
    expect((bad!.error as { message: string }).message).toMatch(/idempotencyKey must be 16 to 64 characters/);
  });
});
