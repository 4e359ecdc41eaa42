import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { ImageCatalog } from '../images/catalog';
import { parseCidr } from '../net/cidr';
import { LeaseStore } from '../net/leases';
import { RpcServer } from '../rpc/server';
import { openDb, type Db } from '../store/db';
import { VmStore } from '../store/vmStore';
import { EventBus } from './eventBus';
import { QemuDriver } from './qemu/qemuDriver';
import { registerVmHandlers } from './vmHandlers';
import { VmService } from './vmService';
import type { VmStatsSampler } from './vmStats';
import { newVm } from '../store/testing/newVm';

const ID = 'vm-00000000000000b2';

let dir: string;
let db: Db;
let bus: EventBus;
let service: VmService;
let server: RpcServer;
let socketPath: string;

beforeEach(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'firedeck-waitready-'));
  db = openDb(path.join(dir, 'state', 'firedeck.db'));
  const subnet = parseCidr('10.213.37.0/24');
  bus = new EventBus();
  const vms = new VmStore(db);
  const catalog = new ImageCatalog(path.join(dir, 'state'));
  service = new VmService({
    config: {
      stateDir: path.join(dir, 'state'),
      runDir: path.join(dir, 'run'),
      bridge: 'fdt4ubr0',
      devicePrefix: 'fdt4u',
      consoleLogMaxBytes: 65536,
      browserVmTtlSeconds: 60,
      rootfsMode: 'clone',
      stopTimeoutSeconds: 5,
    },
    subnet,
    vms,
    leases: new LeaseStore(db, subnet, 'fdt4u'),
    drivers: [new QemuDriver({ qemuAccel: 'tcg' })],
    images: { resolve: async (ref) => catalog.resolve(ref) },
    events: bus,
    log: () => undefined,
  });
  // A VM that is booting and will never print its marker: only the caller's leaving can end the wait early.
  vms.insert(newVm(ID, 'alice-cli'));
  vms.update(ID, { state: 'booting' });
  server = new RpcServer();
  const stats = { intervalMs: 1000, latest: () => [] } as unknown as VmStatsSampler;
  registerVmHandlers(server, service, bus, Promise.resolve(), stats);
  socketPath = path.join(dir, 'd.sock');
  await server.listen(socketPath, 0o600);
});

afterEach(async () => {
  await server.close();
  service.shutdown();
  db.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

describe('vm.waitReady over RPC', () => {
  it('stops waiting when its caller closes the connection: its listener is removed, not left until the deadline', async () => {
    const before = bus.subscriberCount;
    const socket = net.connect(socketPath);
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    socket.write(`{"jsonrpc":"2.0","id":1,"method":"vm.waitReady","params":{"id":"${ID}","timeoutSeconds":3600}}\n`);
    // The waiter is listening for the VM's events...
    await vi.waitFor(() => expect(bus.subscriberCount).toBe(before + 1));
    socket.destroy();
    // ...and is gone once its connection is, an hour before its deadline.
    await vi.waitFor(() => expect(bus.subscriberCount).toBe(before));
  });
});
