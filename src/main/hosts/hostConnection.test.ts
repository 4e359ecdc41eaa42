import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { RpcServer } from '../../../host-daemon/src/rpc/server';
import type { HostStatus } from '../../shared/app/contract';
import { FiredeckError } from '../../shared/errors';
import type { ExecChannel, Transport } from '../ssh/transport';
import { HostConnection } from './hostConnection';
import { testDaemonInfo } from '../../../test/support/daemonInfo';

const info = testDaemonInfo;

/** A transport whose `dial-stdio` is a connection to the daemon's real RPC server on a unix socket. */
class SocketTransport implements Transport {
  readonly where = 'test-host';
  readonly sockets: net.Socket[] = [];
  closed = false;
  private readonly listeners = new Set<(error: FiredeckError | null) => void>();
  constructor(private readonly socketPath: string) {}
  async exec(): Promise<ExecChannel> {
    const socket = net.connect(this.socketPath);
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    this.sockets.push(socket);
    return {
      stream: socket,
      stderr: new PassThrough(),
      resize: () => undefined,
      close: () => socket.destroy(),
      exited: new Promise((resolve) => socket.once('close', () => resolve({ code: 0, signal: null }))),
    };
  }
  onClose(listener: (error: FiredeckError | null) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const s of this.sockets) s.destroy();
    for (const l of this.listeners) l(null);
  }
}

describe('host connection set-up', () => {
  let dir: string;
  let server: RpcServer;
  let socketPath: string;

  beforeEach(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'firedeck-hostconn-'));
    socketPath = path.join(dir, 'd.sock');
    server = new RpcServer();
    server.register('daemon.info', () => info);
    await server.listen(socketPath, 0o600, null);
  });

  afterEach(async () => {
    await server.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  const connection = (transport: SocketTransport, statuses: HostStatus[]): HostConnection =>
    new HostConnection({
      hostId: 'h1',
      openTransport: () => Promise.resolve(transport),
      daemonCommand: 'firedeckd',
      onStatus: (s) => statuses.push(s),
      onEvent: () => undefined,
      backoff: { initialMs: 10, maxMs: 10, factor: 1 },
    });

  it('fails, and closes the link, when the event subscription fails (the fleet would go stale)', async () => {
    server.register('events.subscribe', () => {
      throw new FiredeckError('internal', 'event bus unavailable');
    });
    const transport = new SocketTransport(socketPath);
    const statuses: HostStatus[] = [];
    const host = connection(transport, statuses);
    const err = await host.connect().then(
      () => null,
      (e: unknown) => e,
    );
    expect((err as FiredeckError).kind).toBe('internal');
    expect(host.status.state).toBe('failed');
    expect(host.status.error?.message).toMatch(/event bus unavailable/);
    expect(transport.closed).toBe(true);
    expect(transport.sockets.every((s) => s.destroyed)).toBe(true);
    expect(() => host.client()).toThrow(/not connected/);
    expect(statuses.map((s) => s.state)).toEqual(['connecting', 'failed']);
  });

  it('connects to a daemon without events (method_not_found) and keeps serving calls', async () => {
    const transport = new SocketTransport(socketPath);
    const host = connection(transport, []);
    const status = await host.connect();
    expect(status.state).toBe('connected');
    expect(status.info?.hostname).toBe('test-host');
    expect((await host.client().call('daemon.info', {})).version).toBe('9.9.9');
    host.disconnect();
    expect(transport.closed).toBe(true);
  });
});

describe('a call whose link dies before its answer', () => {
  let dir: string;
  let server: RpcServer;
  let socketPath: string;
  const transports: SocketTransport[] = [];

  beforeEach(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'firedeck-hostconn-'));
    socketPath = path.join(dir, 'd.sock');
    server = new RpcServer();
    server.register('daemon.info', () => info);
    server.register('events.subscribe', () => ({ subscription: 'sub-1', seq: 0 }));
    await server.listen(socketPath, 0o600, null);
    transports.length = 0;
  });

  afterEach(async () => {
    await server.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  /** Each attempt gets a fresh link to the real server; `cut()` kills the current one. */
  const reconnecting = (): { host: HostConnection; cut: () => void } => {
    const host = new HostConnection({
      hostId: 'h1',
      openTransport: () => {
        const t = new SocketTransport(socketPath);
        transports.push(t);
        return Promise.resolve(t);
      },
      daemonCommand: 'firedeckd',
      onStatus: () => undefined,
      onEvent: () => undefined,
      backoff: { initialMs: 10, maxMs: 10, factor: 1 },
    });
    return { host, cut: () => transports[transports.length - 1]!.sockets.forEach((s) => s.destroy()) };
  };

  it('is sent again once the link is back, and a mutating one is applied once (its idempotency key)', async () => {
    const { host, cut } = reconnecting();
    await host.connect();
    let applied = 0;
    server.register('proxy.clear', () => {
      applied++;
      // The daemon applies the call; its answer is lost with the link.
      if (applied === 1) cut();
      return { configured: false, http: null, https: null, noProxy: [] };
    });
    await expect(host.call('proxy.clear', {})).resolves.toEqual({
      configured: false,
      http: null,
      https: null,
      noProxy: [],
    });
    expect(applied).toBe(1);
    expect(transports.length).toBe(2);
    expect(host.status.state).toBe('connected');
    host.disconnect();
  });

  it('is sent again for a read too, and fails as it did when the link does not come back', async () => {
    const { host, cut } = reconnecting();
    await host.connect();
    let asked = 0;
    server.register('vm.list', () => {
      asked++;
      if (asked === 1) cut();
      return [];
    });
    await expect(host.call('vm.list', {})).resolves.toEqual([]);
    expect(asked).toBe(2);

    server.register('vm.get', () => {
      host.disconnect();
      return new Promise(() => undefined);
    });
    await expect(host.call('vm.get', { id: 'vm-0000abcd' })).rejects.toMatchObject({ kind: 'disconnected' });
  });
});
