import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import ssh2 from 'ssh2';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { AppEvent, HostStatus } from '../../shared/app/contract';
import { HostRegistry } from '../hosts/hostRegistry';
import { openLocalStore, type Db } from '../hosts/localStore';
import { AppService, type CallContext } from './appService';

/**
 * A TCP endpoint that takes SSH connections and never answers them until told to: each host's handshake stays
 * open for as long as the test wants, so whether two hosts' handshakes overlap shows whether they ran in parallel.
 */
class SilentHost {
  readonly arrivals: number[] = [];
  private readonly sockets = new Set<net.Socket>();
  private readonly server = net.createServer((socket) => {
    this.arrivals.push(Date.now());
    this.sockets.add(socket);
    socket.on('error', () => undefined);
    this.waiters.splice(0).forEach((w) => w());
  });
  private waiters: (() => void)[] = [];
  port = 0;

  async listen(): Promise<void> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.port = (this.server.address() as net.AddressInfo).port;
  }
  /** Resolves once a connection has arrived. */
  arrived(): Promise<void> {
    return this.arrivals.length > 0 ? Promise.resolve() : new Promise((resolve) => this.waiters.push(resolve));
  }
  /** Drops every connection: the client's handshake fails. */
  hangUp(): void {
    for (const s of this.sockets) s.destroy();
  }
  async close(): Promise<void> {
    this.hangUp();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

describe('connecting every host at once', () => {
  let dir: string;
  let db: Db;
  let registry: HostRegistry;
  let service: AppService;
  let keyPath: string;
  const events: AppEvent[] = [];
  const ctx: CallContext = { sessionId: 's1', emit: (e) => events.push(e) };
  const hosts: SilentHost[] = [];

  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'firedeck-connect-all-'));
    db = openLocalStore(dir);
    registry = new HostRegistry(db);
    keyPath = path.join(dir, 'id_ed25519');
    fs.writeFileSync(keyPath, ssh2.utils.generateKeyPairSync('ed25519').private, { mode: 0o600 });
    service = new AppService({ mode: 'web', registry, localDaemonCommand: null });
    service.onBroadcast((e) => events.push(e));
    events.length = 0;
  });
  afterEach(async () => {
    service.shutdown();
    for (const h of hosts.splice(0)) await h.close();
    db.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  const addHost = async (name: string): Promise<{ id: string; endpoint: SilentHost }> => {
    const endpoint = new SilentHost();
    await endpoint.listen();
    hosts.push(endpoint);
    const host = registry.add({
      name,
      address: '127.0.0.1',
      port: endpoint.port,
      user: 'root',
      auth: { type: 'keyFile', path: keyPath },
    });
    return { id: host.id, endpoint };
  };
  const statusOf = (hostId: string): HostStatus['state'] | undefined => {
    const seen = events.flatMap((e) => (e.type === 'host.status' && e.status.hostId === hostId ? [e.status] : []));
    return seen.at(-1)?.state;
  };

  it("opens both hosts' handshakes at the same time, and one host failing leaves the other's attempt running", async () => {
    const a = await addHost('alpha');
    const b = await addHost('beta');
    const all = service.dispatch('hosts.connectAll', {}, ctx);
    // Both handshakes are open together: a serial connect would reach beta only after alpha had settled.
    await Promise.all([a.endpoint.arrived(), b.endpoint.arrived()]);
    expect(statusOf(a.id)).toBe('connecting');
    expect(statusOf(b.id)).toBe('connecting');

    // Beta fails; alpha is still mid-handshake and the call has not answered for it yet.
    b.endpoint.hangUp();
    await expect.poll(() => statusOf(b.id), { timeout: 10_000 }).toBe('failed');
    expect(statusOf(a.id)).toBe('connecting');

    a.endpoint.hangUp();
    const res = await all;
    expect(res.ok).toBe(true);
    const statuses = (res as { value: HostStatus[] }).value;
    expect(statuses.map((s) => [s.hostId, s.state])).toEqual([
      [a.id, 'failed'],
      [b.id, 'failed'],
    ]);
    expect(a.endpoint.arrivals).toHaveLength(1);
    expect(b.endpoint.arrivals).toHaveLength(1);
  });
});
