import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { isFiredeckError } from '../../../src/shared/errors';
import type { DaemonEvent } from '../../../src/shared/protocol/events';
import type { Db } from '../store/db';
import { VmStore } from '../store/vmStore';
import { EventBus } from './eventBus';
import type { VmService } from './vmService';
import { newVm } from '../store/testing/newVm';
import { testVmService } from './testing/testVmService';

let dir: string;
let db: Db;
let service: VmService;
let seen: DaemonEvent[];
let bus: EventBus;

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'firedeck-vmsvc-'));
  const events = new EventBus();
  bus = events;
  seen = [];
  events.subscribe(null, (d) => seen.push(d.event));
  ({ db, service } = testVmService({
    stateDir: path.join(dir, 'state'),
    runDir: path.join(dir, 'run'),
    bridge: 'fdt3ubr0',
    prefix: 'fdt3u',
    cidr: '10.213.36.0/24',
    events,
  }));
});

afterEach(() => {
  service.shutdown();
  db.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

async function kindOf(p: Promise<unknown> | (() => unknown)): Promise<string> {
  try {
    await (typeof p === 'function' ? p() : p);
  } catch (err) {
    return isFiredeckError(err) ? err.kind : `untyped: ${String(err)}`;
  }
  return 'no error';
}

describe('VmService bad input', () => {
  it('answers unknown ids with not_found for every operation', async () => {
    const id = 'vm-00000000000000ab';
    expect(await kindOf(() => service.get(id))).toBe('not_found');
    expect(await kindOf(service.start(id))).toBe('not_found');
    expect(await kindOf(service.stop(id, {}))).toBe('not_found');
    expect(await kindOf(service.restart(id, {}))).toBe('not_found');
    expect(await kindOf(service.destroy(id))).toBe('not_found');
    expect(await kindOf(service.waitReady(id))).toBe('not_found');
    expect(await kindOf(() => service.consoleTail(id, 10))).toBe('not_found');
  });

  it('a create with an unknown image leaves no row, lease, file or event behind', async () => {
    expect(await kindOf(service.create({ name: 'x', kind: 'cli', owner: 'o', image: 'missing' }))).toBe('not_found');
    expect(service.list(true)).toEqual([]);
    expect(fs.existsSync(path.join(dir, 'state', 'vms'))).toBe(false);
    expect(seen).toEqual([]);
  });

  it('refuses a driver this daemon does not have with unavailable', async () => {
    expect(
      await kindOf(service.create({ name: 'x', kind: 'cli', owner: 'o', image: 'test', driver: 'firecracker' })),
    ).toBe('unavailable');
  });

  it("refuses a VM bigger than the host's free memory with resource_exhausted, before touching anything", async () => {
    const err = await service.create({ name: 'big', kind: 'cli', owner: 'o', image: 'test', memoryMib: 262144 }).then(
      () => null,
      (e: unknown) => e,
    );
    expect(isFiredeckError(err) && err.kind).toBe('resource_exhausted');
    expect(isFiredeckError(err) && err.hint).toMatch(/^Ask for at most \d+ MiB/);
    expect(service.list(true)).toEqual([]);
    expect(seen).toEqual([]);
  });

  it('refuses a second live VM of the same name with conflict, before touching the machine', async () => {
    const store = new VmStore(db);
    store.insert(newVm('vm-00000000000000cd', 'taken', { owner: 'o' }));
    store.update('vm-00000000000000cd', { state: 'stopped' });
    expect(await kindOf(service.create({ name: 'taken', kind: 'cli', owner: 'o', image: 'test' }))).toBe('conflict');
    expect(service.list().map((v) => v.name)).toEqual(['taken']);
    // Stopping a stopped VM is a no-op; starting one whose image is gone fails before anything changes.
    expect(await kindOf(service.stop('vm-00000000000000cd', {}))).toBe('no error');
    expect(await kindOf(service.start('vm-00000000000000cd'))).toBe('not_found');
    expect(service.get('vm-00000000000000cd').state).toBe('stopped');
  });
});

describe('VmService reaper', () => {
  it('destroys a browser VM once it expires, and leaves a CLI VM alone', async () => {
    const store = new VmStore(db);
    const base = {
      owner: 'o',
      image: 'test',
      driver: 'qemu' as const,
      vcpus: 1,
      memoryMib: 256,
      diskMib: 1024,
      sessionId: null,
    };
    store.insert({
      ...base,
      id: 'vm-00000000000000b1',
      name: 'login',
      kind: 'browser',
      expiresAt: new Date(Date.now() + 300).toISOString(),
    });
    store.insert({ ...base, id: 'vm-00000000000000c1', name: 'keep', kind: 'cli', expiresAt: null });
    for (const id of ['vm-00000000000000b1', 'vm-00000000000000c1']) {
      store.update(id, { state: 'stopped' });
      fs.mkdirSync(service.vmStateDir(id), { recursive: true });
    }
    const destroyed = new Promise<void>((resolve) => {
      bus.subscribe(['vm.destroyed'], ({ event }) => {
        if (event.type === 'vm.destroyed' && event.vmId === 'vm-00000000000000b1') resolve();
      });
    });
    service.armReaper();
    await destroyed;
    expect(service.get('vm-00000000000000b1').state).toBe('destroyed');
    expect(fs.existsSync(service.vmStateDir('vm-00000000000000b1'))).toBe(false);
    expect(service.get('vm-00000000000000c1').state).toBe('stopped');
    expect(fs.existsSync(service.vmStateDir('vm-00000000000000c1'))).toBe(true);
  });
});
