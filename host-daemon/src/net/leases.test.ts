import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { isFiredeckError } from '../../../src/shared/errors';
import { openDb, type Db } from '../store/db';
import { VmStore } from '../store/vmStore';
import { parseCidr, subnetHolds } from './cidr';
import { LeaseStore, macFor, tapName } from './leases';
import { bridgeMac } from './links';
import { newVm } from '../store/testing/newVm';

let dir: string;
let db: Db;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'firedeck-leases-'));
  db = openDb(path.join(dir, 'firedeck.db'));
});
afterEach(() => {
  db.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

function addVm(vms: VmStore, n: number): string {
  const id = `vm-${n.toString(16).padStart(16, '0')}`;
  vms.insert(newVm(id, `vm${n}`, { owner: 'o' }));
  return id;
}

describe('cidr', () => {
  it('derives gateway, netmask and capacity', () => {
    expect(parseCidr('10.213.7.0/24')).toMatchObject({
      gateway: '10.213.7.1',
      netmask: '255.255.255.0',
      guestCapacity: 253,
    });
    expect(parseCidr('10.213.7.77/29')).toMatchObject({ gateway: '10.213.7.73', guestCapacity: 5 });
    expect(() => parseCidr('10.213.7.0')).toThrow(/CIDR/);
    expect(() => parseCidr('10.213.300.0/24')).toThrow(/IPv4/);
    expect(() => parseCidr('10.0.0.0/31')).toThrow(/prefix/);
  });

  it("derives a bridge's own MAC from its name: unicast, locally administered, never a VM's", () => {
    expect(bridgeMac('fdbr0')).toMatch(/^02:fe(:[0-9a-f]{2}){4}$/);
    expect(bridgeMac('fdbr0')).toBe(bridgeMac('fdbr0'));
    expect(bridgeMac('fdbr1')).not.toBe(bridgeMac('fdbr0'));
    expect(macFor('vm-0000000000000001').startsWith('02:fd:')).toBe(true);
  });

  it('knows which addresses a subnet holds', () => {
    const subnet = parseCidr('10.213.7.64/26');
    expect(['10.213.7.64', '10.213.7.65', '10.213.7.127'].map((a) => subnetHolds(subnet, a))).toEqual([
      true,
      true,
      true,
    ]);
    expect(
      ['10.213.7.63', '10.213.7.128', '10.213.8.65', 'fe80::1', '10.213.7', ''].some((a) => subnetHolds(subnet, a)),
    ).toBe(false);
  });
});

describe('LeaseStore', () => {
  it('hands out the lowest free address and TAP, reuses freed ones, keeps a VM its lease', () => {
    const vms = new VmStore(db);
    const leases = new LeaseStore(db, parseCidr('10.213.8.0/24'), 'fdt');
    const a = leases.acquire(addVm(vms, 1));
    const b = leases.acquire(addVm(vms, 2));
    expect([a.address, a.tap, b.address, b.tap]).toEqual(['10.213.8.2', 'fdttap0', '10.213.8.3', 'fdttap1']);
    expect(leases.acquire(a.vmId)).toEqual(a);
    leases.release(a.vmId);
    const c = leases.acquire(addVm(vms, 3));
    expect([c.address, c.tap]).toEqual(['10.213.8.2', 'fdttap0']);
  });

  it('fails with resource_exhausted when the subnet is full', () => {
    const vms = new VmStore(db);
    const leases = new LeaseStore(db, parseCidr('10.213.8.0/29'), 'fdt');
    for (let i = 1; i <= 5; i++) leases.acquire(addVm(vms, i));
    try {
      leases.acquire(addVm(vms, 6));
      expect.unreachable();
    } catch (err) {
      expect(isFiredeckError(err, 'resource_exhausted')).toBe(true);
    }
  });

  it('persists across reopen', () => {
    const vms = new VmStore(db);
    const lease = new LeaseStore(db, parseCidr('10.213.8.0/24'), 'fdt').acquire(addVm(vms, 1));
    db.close();
    db = openDb(path.join(dir, 'firedeck.db'));
    expect(new LeaseStore(db, parseCidr('10.213.8.0/24'), 'fdt').list()).toEqual([lease]);
  });

  it('derives MACs deterministically and names TAPs within IFNAMSIZ', () => {
    expect(macFor('vm-0123456789abcdef')).toBe(macFor('vm-0123456789abcdef'));
    expect(macFor('vm-0123456789abcdef')).not.toBe(macFor('vm-0123456789abcdee'));
    expect(macFor('vm-0123456789abcdef')).toMatch(/^02:fd(:[0-9a-f]{2}){4}$/);
    expect(tapName('fd', 12)).toBe('fdtap12');
    expect(() => tapName('averylongprefix', 1)).toThrow(/longer than 15/);
  });
});
