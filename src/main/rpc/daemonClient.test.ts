import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { RpcServer, type RpcConnection } from '../../../host-daemon/src/rpc/server';
import { FiredeckError } from '../../shared/errors';
import type { EventEnvelope } from '../../shared/protocol/events';
import { DaemonClient } from './daemonClient';
import { testDaemonInfo } from '../../../test/support/daemonInfo';

const info = testDaemonInfo;

describe('DaemonClient against a real RpcServer on a unix socket', () => {
  let dir: string;
  let server: RpcServer;
  let socketPath: string;
  let clients: DaemonClient[];
  let release: (() => void) | null;

  beforeEach(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'firedeck-rpc-'));
    socketPath = path.join(dir, 'd.sock');
    server = new RpcServer();
    clients = [];
    release = null;
    server.register('daemon.info', () => info);
    server.register('vm.get', () => {
      throw new FiredeckError('not_found', 'No VM vm-00000000', { hint: 'List VMs with vm.list' });
    });
    server.register(
      'vm.waitReady',
      () =>
        new Promise((resolve) => {
          release = () => resolve({} as never);
        }),
    );
    // A guest that writes one 1.2 MB line: the reply is over the frame cap.
    server.register('vm.console.tail', () => ({ lines: ['x'.repeat(1_200_000)], truncated: false }));
    server.register('events.subscribe', (_p, ctx) => {
      const conn: RpcConnection = ctx.connection;
      setImmediate(() => {
        const envelope: EventEnvelope = {
          subscription: 's1',
          seq: 1,
          at: new Date().toISOString(),
          event: { type: 'vm.destroyed', vmId: 'vm-0000abcd' },
        };
        conn.notify('event', envelope);
        conn.notify('event', { subscription: 's1', seq: 2, at: 'x', event: { type: 'bogus' } });
      });
      return { subscription: 's1', seq: 0 };
    });
    await server.listen(socketPath, 0o600, null);
  });

  afterEach(async () => {
    for (const c of clients) c.close();
    release?.();
    await server.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  const connect = async (): Promise<DaemonClient> => {
    const socket = net.connect(socketPath);
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    const client = new DaemonClient(socket);
    clients.push(client);
    return client;
  };

  it('calls a method and returns the result the schema validated', async () => {
    const client = await connect();
    await expect(client.call('daemon.info', {})).resolves.toEqual(info);
  });

  it('carries the daemon error whole: kind, message and hint', async () => {
    const client = await connect();
    const err = await client.call('vm.get', { id: 'vm-00000000' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(FiredeckError);
    expect((err as FiredeckError).kind).toBe('not_found');
    expect((err as FiredeckError).hint).toBe('List VMs with vm.list');
  });

  it('leaves params to the daemon, which refuses bad ones, and refuses unknown methods by name', async () => {
    const client = await connect();
    await expect(client.call('vm.get', { id: 'not-a-vm' })).rejects.toMatchObject({ kind: 'invalid_params' });
    await expect(client.callByName('vm.nope', {})).rejects.toMatchObject({ kind: 'method_not_found' });
    // Registered in the table but not on this server: the daemon answers -32601.
    await expect(client.callByName('vm.list', {})).rejects.toMatchObject({ kind: 'method_not_found' });
  });

  it('delivers valid event notifications and drops malformed ones', async () => {
    const client = await connect();
    const seen: EventEnvelope[] = [];
    const got = new Promise<void>((resolve) =>
      client.onEvent((e) => {
        seen.push(e);
        resolve();
      }),
    );
    await client.call('events.subscribe', {});
    await got;
    await client.call('daemon.info', {}); // the malformed one was sent before this answer
    expect(seen.map((e) => e.seq)).toEqual([1]);
  });

  it('rejects pending calls with `disconnected` when the connection drops', async () => {
    const client = await connect();
    const pending = client.call('vm.waitReady', { id: 'vm-00000000' });
    const closed = new Promise<FiredeckError>((resolve) => client.onClose(resolve));
    await server.close();
    await expect(pending).rejects.toMatchObject({ kind: 'disconnected' });
    expect((await closed).kind).toBe('disconnected');
    await expect(client.call('daemon.info', {})).rejects.toMatchObject({ kind: 'disconnected' });
  });

  it('rejects a result that does not match the protocol', async () => {
    const rogue = net.createServer((s) => {
      s.on('data', (d: Buffer) => {
        const { id } = JSON.parse(d.toString().trim()) as { id: number };
        s.write(JSON.stringify({ jsonrpc: '2.0', id, result: { version: 1 } }) + '\n');
      });
    });
    const rogueSock = path.join(dir, 'rogue.sock');
    await new Promise<void>((r) => rogue.listen(rogueSock, r));
    const socket = net.connect(rogueSock);
    const client = new DaemonClient(socket);
    clients.push(client);
    await expect(client.call('daemon.info', {})).rejects.toMatchObject({ kind: 'internal' });
    client.close();
    await new Promise<void>((r) => rogue.close(() => r()));
  });

  it('fails a call whose reply is over the frame cap with frame_too_large, and the link goes on', async () => {
    const client = await connect();
    const err = (await client.call('vm.console.tail', { id: 'vm-00000000' }).catch((e: unknown) => e)) as FiredeckError;
    expect(err).toBeInstanceOf(FiredeckError);
    expect(err.kind).toBe('frame_too_large');
    expect(err.message).toContain('vm.console.tail');
    await expect(client.call('daemon.info', {})).resolves.toEqual(info);
  });

  it('times out a call the daemon never answers', async () => {
    const client = await connect();
    await expect(client.call('vm.waitReady', { id: 'vm-00000000' }, { timeoutMs: 50 })).rejects.toMatchObject({
      kind: 'timeout',
    });
  });
});
