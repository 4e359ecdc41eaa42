import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { isFiredeckError } from '../../../src/shared/errors';
import { parseCidr } from '../net/cidr';
import { LeaseStore } from '../net/leases';
import { AuditLog } from './auditLog';
import { openDb, type Db } from './db';
import { VmStore, type NewVm } from './vmStore';
import { newVm as storeVm } from './testing/newVm';

let dir: string;
let db: Db;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'firedeck-vmstore-'));
  db = openDb(path.join(dir, 'firedeck.db'));
});
afterEach(() => {
  db.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

const newVm = (id: string, name: string): NewVm =>
  storeVm(id, name, { owner: 'alice@example.org', image: 'test@1', diskMib: 4096 });

describe('VmStore', () => {
  it('round-trips a VM with its lease and handle', () => {
    const vms = new VmStore(db);
    const leases = new LeaseStore(db, parseCidr('10.213.50.0/24'), 'fdt');
    vms.insert(newVm('vm-0000000000000001', 'one'));
    const lease = leases.acquire('vm-0000000000000001');
    const handle = {
      pid: 4242,
      cmdline: 'qemu\0-M\0pc\0',
      controlSocket: '/run/x/qmp.sock',
      console: { kind: 'unix-socket' as const, path: '/run/x/serial.sock' },
    };
    vms.update('vm-0000000000000001', { state: 'running', ready: ['vm'], handle, hostKey: 'ssh-ed25519 AAAA' });
    const rec = vms.require('vm-0000000000000001');
    expect(rec.vm).toMatchObject({
      state: 'running',
      ready: ['vm'],
      pid: 4242,
      address: lease.address,
      tap: 'fdttap0',
    });
    expect(rec.vm.mac).toBe(lease.mac);
    expect(rec.handle).toEqual(handle);
    expect(rec.hostKey).toBe('ssh-ed25519 AAAA');
  });

  it('refuses a second live VM with the same name, allows it after destroy', () => {
    const vms = new VmStore(db);
    vms.insert(newVm('vm-0000000000000001', 'dup'));
    try {
      vms.insert(newVm('vm-0000000000000002', 'dup'));
      expect.unreachable();
    } catch (err) {
      expect(isFiredeckError(err, 'conflict')).toBe(true);
    }
    vms.update('vm-0000000000000001', { state: 'destroyed' });
    expect(vms.insert(newVm('vm-0000000000000003', 'dup')).vm.name).toBe('dup');
    expect(vms.list().map((r) => r.vm.id)).toEqual(['vm-0000000000000003']);
    expect(vms.list(true)).toHaveLength(2);
  });

  it('reports unknown ids as not_found', () => {
    const vms = new VmStore(db);
    expect(() => vms.require('vm-00000000000000ff')).toThrow(/No VM/);
    expect(() => vms.update('vm-00000000000000ff', { state: 'stopped' })).toThrow(/No VM/);
  });

  it('rejects a corrupted row on read instead of passing it on', () => {
    const vms = new VmStore(db);
    vms.insert(newVm('vm-0000000000000001', 'one'));
    db.prepare("UPDATE vms SET state = 'exploded' WHERE id = 'vm-0000000000000001'").run();
    expect(() => vms.get('vm-0000000000000001')).toThrow();
  });

  it('drops the lease with the VM row (foreign key cascade)', () => {
    const vms = new VmStore(db);
    const leases = new LeaseStore(db, parseCidr('10.213.50.0/24'), 'fdt');
    vms.insert(newVm('vm-0000000000000001', 'one'));
    leases.acquire('vm-0000000000000001');
    vms.delete('vm-0000000000000001');
    expect(leases.list()).toEqual([]);
    expect(() => leases.acquire('vm-00000000000000aa')).toThrow(/FOREIGN KEY/);
  });
});

describe('AuditLog', () => {
  it('records calls with secrets redacted', () => {
    const audit = new AuditLog(db);
    const vncPassword = randomBytes(6).toString('base64url');
    audit.append({
      user: 'bob',
      uid: 1001,
      method: 'vm.create',
      params: { name: 'x', vncPassword, nested: { agentToken: 't', keep: 1 } },
      ok: false,
      errorKind: 'conflict',
      errorMessage: 'busy',
    });
    const [entry] = audit.recent();
    expect(entry).toMatchObject({ user: 'bob', uid: 1001, method: 'vm.create', ok: false, errorKind: 'conflict' });
    expect(entry!.params).toEqual({
      name: 'x',
      vncPassword: '[redacted]',
      nested: { agentToken: '[redacted]', keep: 1 },
    });
    expect(JSON.stringify(entry)).not.toContain(vncPassword);
  });
});
