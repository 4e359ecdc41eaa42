import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { RpcServer } from '../rpc/server';
import type { Db } from '../store/db';
import { EventBus } from './eventBus';
import { registerVmHandlers } from './vmHandlers';
import type { VmService } from './vmService';
import type { VmStatsSampler } from './vmStats';
import { newVm } from '../store/testing/newVm';
import { testVmService } from './testing/testVmService';

const ID = 'vm-00000000000000b2';

let dir: string;
let db: Db;
let bus: EventBus;
let service: VmService;
let server: RpcServer;
let socketPath: string;

beforeEach(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'firedeck-waitready-'));
  bus = new EventBus();
  const made = testVmService({
    stateDir: path.join(dir, 'state'),
    runDir: path.join(dir, 'run'),
    bridge: 'fdt4ubr0',
    prefix: 'fdt4u',
    cidr: '10.213.37.0/24',
    events: bus,
  });
  ({ db, service } = made);
  const { vms } = made;
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
