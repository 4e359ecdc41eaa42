import { describe, expect, it } from 'vitest';
import { testDaemonInfo } from '../../../test/support/daemonInfo';
import { FiredeckError } from '../errors';
import type { EventEnvelope } from '../protocol/events';
import { RpcClient, type RpcClientOptions } from './rpcClient';

interface Sent {
  id: number;
  method: string;
  params: unknown;
}

/** A client whose link is this test: what it writes is kept, what the "daemon" says is pushed. */
function linked(options: Partial<RpcClientOptions> = {}): {
  client: RpcClient;
  sent: Sent[];
  dropped: FiredeckError[];
  reply(id: number, result: unknown): void;
} {
  const sent: Sent[] = [];
  const dropped: FiredeckError[] = [];
  const client = new RpcClient({
    write: (frame) => {
      expect(frame.endsWith('\n')).toBe(true);
      sent.push(JSON.parse(frame) as Sent);
    },
    onDropped: (e) => dropped.push(e),
    ...options,
  });
  const reply = (id: number, result: unknown): void =>
    client.push(JSON.stringify({ jsonrpc: '2.0', id, result }) + '\n');
  return { client, sent, dropped, reply };
}

const envelope = (seq: number): EventEnvelope => ({
  subscription: 's1',
  seq,
  at: '2026-12-03T00:00:00.000Z',
  event: { type: 'vm.destroyed', vmId: 'vm-0000abcd' },
});

describe('RpcClient', () => {
  it('sends a request and resolves with the result its schema parsed, from bytes split anywhere', async () => {
    const { client, sent } = linked();
    const call = client.call('daemon.info', {});
    expect(sent).toEqual([{ jsonrpc: '2.0', id: 1, method: 'daemon.info', params: {} }]);
    const bytes = new TextEncoder().encode(JSON.stringify({ jsonrpc: '2.0', id: 1, result: testDaemonInfo }) + '\n');
    client.push(bytes.subarray(0, 7));
    client.push(bytes.subarray(7));
    await expect(call).resolves.toEqual(testDaemonInfo);
  });

  it('carries a daemon error whole', async () => {
    const { client } = linked();
    const call = client.call('vm.get', { id: 'vm-00000000' });
    client.push(
      JSON.stringify({
        jsonrpc: '2.0',
        id: 1,
        error: { code: -32001, message: 'No VM', data: { kind: 'not_found', hint: 'List VMs with vm.list' } },
      }) + '\n',
    );
    await expect(call).rejects.toMatchObject({ kind: 'not_found', message: 'No VM', hint: 'List VMs with vm.list' });
  });

  it('does not check params: the daemon does', () => {
    const { client, sent } = linked();
    void client.call('vm.get', { id: 'not-a-vm' }).catch(() => undefined);
    expect(sent[0]?.params).toEqual({ id: 'not-a-vm' });
  });

  it('fails a pending call with frame_too_large when its reply is over the cap, and goes on', async () => {
    const { client, reply } = linked({ maxFrameBytes: 4096 });
    const big = client.call('vm.console.tail', { id: 'vm-00000000' });
    const small = client.call('daemon.info', {});
    const line = 'x'.repeat(10_000);
    // The reply arrives in pieces: the call fails as soon as the frame is known to be too long.
    const frame = JSON.stringify({ jsonrpc: '2.0', id: 1, result: { lines: [line], truncated: false } }) + '\n';
    client.push(frame.slice(0, 5000));
    const err = (await big.catch((e: unknown) => e)) as FiredeckError;
    expect(err).toBeInstanceOf(FiredeckError);
    expect(err.kind).toBe('frame_too_large');
    expect(err.message).toContain('vm.console.tail');
    client.push(frame.slice(5000));
    reply(2, testDaemonInfo);
    await expect(small).resolves.toEqual(testDaemonInfo);
  });

  it('fails the call whose whole oversized reply came in one chunk, and only that one', async () => {
    const { client, reply } = linked({ maxFrameBytes: 4096 });
    const first = client.call('vm.list', {});
    const second = client.call('vm.console.tail', { id: 'vm-00000000' });
    client.push(
      JSON.stringify({ jsonrpc: '2.0', id: 2, result: { lines: ['y'.repeat(5000)], truncated: false } }) + '\n',
    );
    await expect(second).rejects.toMatchObject({ kind: 'frame_too_large' });
    reply(1, []);
    await expect(first).resolves.toEqual([]);
  });

  it('drops an oversized event without failing any call', async () => {
    const { client, dropped, reply } = linked({ maxFrameBytes: 4096 });
    const call = client.call('vm.list', {});
    const events: EventEnvelope[] = [];
    client.onEvent((e) => events.push(e));
    client.push(
      JSON.stringify({ jsonrpc: '2.0', method: 'event', params: { ...envelope(1), pad: 'z'.repeat(5000) } }) + '\n',
    );
    expect(dropped.map((e) => e.kind)).toEqual(['frame_too_large']);
    reply(1, []);
    await expect(call).resolves.toEqual([]);
    expect(events).toEqual([]);
  });

  it('fails every pending call on an oversized frame that names no call', async () => {
    const { client } = linked({ maxFrameBytes: 64 });
    const a = client.call('vm.list', {});
    const b = client.call('daemon.info', {});
    client.push(`[${'1,'.repeat(100)}1]\n`);
    await expect(a).rejects.toMatchObject({ kind: 'frame_too_large' });
    await expect(b).rejects.toMatchObject({ kind: 'frame_too_large' });
  });

  it('refuses a request over the cap before writing it', async () => {
    const { client, sent } = linked({ maxFrameBytes: 64 });
    await expect(client.call('vm.get', { id: `vm-${'0'.repeat(100)}` })).rejects.toMatchObject({
      kind: 'frame_too_large',
    });
    expect(sent).toEqual([]);
  });

  it('fails every pending call and every later one with disconnected when the link closes', async () => {
    const { client } = linked();
    const a = client.call('vm.waitReady', { id: 'vm-00000000' });
    const b = client.call('vm.list', {});
    const closed = new Promise<FiredeckError>((resolve) => client.onClose(resolve));
    client.linkClosed(new FiredeckError('disconnected', 'The SSH channel closed', { hint: 'Reconnect' }));
    await expect(a).rejects.toMatchObject({ kind: 'disconnected', message: 'vm.waitReady: The SSH channel closed' });
    await expect(b).rejects.toMatchObject({ kind: 'disconnected', hint: 'Reconnect' });
    expect((await closed).message).toBe('The SSH channel closed');
    expect(client.isClosed).toBe(true);
    await expect(client.call('daemon.info', {})).rejects.toMatchObject({ kind: 'disconnected' });
    const late = new Promise<FiredeckError>((resolve) => client.onClose(resolve));
    expect((await late).message).toBe('The SSH channel closed');
  });

  it('times a call out with a typed error and ignores its late answer', async () => {
    const { client, reply, dropped } = linked({ callTimeoutMs: 20 });
    const err = (await client.call('vm.list', {}).catch((e: unknown) => e)) as FiredeckError;
    expect(err).toBeInstanceOf(FiredeckError);
    expect(err.kind).toBe('timeout');
    expect(err.message).toBe('vm.list: no answer from firedeckd within 20 ms');
    reply(1, []);
    expect(dropped).toEqual([]);
    // A call's own deadline wins over the default; 0 waits for the answer however long it takes.
    const patient = client.call('vm.list', {}, { timeoutMs: 0 });
    await expect(client.call('vm.list', {})).rejects.toMatchObject({ kind: 'timeout' }); // the default has passed
    reply(2, []);
    await expect(patient).resolves.toEqual([]);
  });

  it('fails a call whose result does not match the protocol with a typed error', async () => {
    const { client, reply } = linked();
    const call = client.call('daemon.info', {});
    reply(1, { version: 1 });
    const err = (await call.catch((e: unknown) => e)) as FiredeckError;
    expect(err).toBeInstanceOf(FiredeckError);
    expect(err.kind).toBe('internal');
    expect(err.message).toContain('daemon.info');
    expect(err.hint).toMatch(/versions may differ/);
    expect(err.details?.issues).toEqual(expect.arrayContaining([expect.stringMatching(/^version: /)]));
  });

  it('delivers events that match their schema, drops the rest, and ignores other notifications', () => {
    const { client, dropped } = linked();
    const seen: number[] = [];
    const off = client.onEvent((e) => seen.push(e.seq));
    client.push(
      [
        JSON.stringify({ jsonrpc: '2.0', method: 'event', params: envelope(1) }),
        JSON.stringify({ jsonrpc: '2.0', method: 'event', params: { ...envelope(2), event: { type: 'bogus' } } }),
        JSON.stringify({ jsonrpc: '2.0', method: 'something.else', params: {} }),
        JSON.stringify({ jsonrpc: '2.0', method: 'event', params: envelope(3) }),
        '',
      ].join('\n'),
    );
    expect(seen).toEqual([1, 3]);
    expect(dropped.map((e) => e.kind)).toEqual(['internal']);
    off();
    client.push(JSON.stringify({ jsonrpc: '2.0', method: 'event', params: envelope(4) }) + '\n');
    expect(seen).toEqual([1, 3]);
  });

  it('refuses an unknown method by name without sending it', async () => {
    const { client, sent } = linked();
    await expect(client.callByName('vm.nope', {})).rejects.toMatchObject({ kind: 'method_not_found' });
    expect(sent).toEqual([]);
  });

  it('fails a call whose write throws', async () => {
    const client = new RpcClient({
      write: () => {
        throw new Error('write after end');
      },
    });
    await expect(client.call('vm.list', {})).rejects.toMatchObject({ kind: 'disconnected' });
  });
});
