import crypto from 'node:crypto';
import { z } from 'zod';
import { FiredeckError } from '../../../src/shared/errors';
import type { Statement } from 'better-sqlite3';
import { statementCache, type Db } from '../store/db';
import { guestAddress, ipToInt, type Subnet } from './cidr';

/** What a VM holds on the network: its address, its TAP and its MAC. */
export interface Lease {
  vmId: string;
  address: string;
  tapIndex: number;
  tap: string;
  mac: string;
}

const LeaseRow = z.object({
  vm_id: z.string(),
  address: z.string(),
  tap_index: z.number().int(),
  tap: z.string(),
  mac: z.string(),
});

/** Linux limits interface names to 15 bytes. */
export const MAX_IFNAME = 15;

export function tapName(devicePrefix: string, index: number): string {
  const name = `${devicePrefix}tap${index}`;
  if (name.length > MAX_IFNAME) {
    throw new FiredeckError('resource_exhausted', `TAP name ${name} is longer than ${MAX_IFNAME} characters`, {
      hint: 'Use a shorter FIREDECK_DEVICE_PREFIX.',
    });
  }
  return name;
}

/** A locally administered unicast MAC derived from the VM id, so a VM keeps its MAC across boots. */
export function macFor(vmId: string): string {
  const h = crypto.createHash('sha256').update(vmId).digest();
  const bytes = [0x02, 0xfd, h[0]!, h[1]!, h[2]!, h[3]!];
  return bytes.map((b) => b.toString(16).padStart(2, '0')).join(':');
}

/** IPv4 leases persisted in the store; allocation is one transaction so two VMs never share an address. */
export class LeaseStore {
  private readonly q: (sql: string) => Statement;

  constructor(
    private readonly db: Db,
    private readonly subnet: Subnet,
    private readonly devicePrefix: string,
  ) {
    this.q = statementCache(db);
  }

  get(vmId: string): Lease | null {
    const row = this.q('SELECT * FROM ip_leases WHERE vm_id = ?').get(vmId);
    return row === undefined ? null : toLease(row);
  }

  list(): Lease[] {
    return this.q('SELECT * FROM ip_leases ORDER BY tap_index').all().map(toLease);
  }

  /** Returns the VM's lease, allocating the lowest free address and TAP index when it has none. */
  acquire(vmId: string): Lease {
    return this.db.transaction((): Lease => {
      const existing = this.get(vmId);
      if (existing) return existing;
      const leases = this.list();
      const usedOffsets = new Set(leases.map((l) => ipToInt(l.address) - this.subnet.network - 2));
      const usedTaps = new Set(leases.map((l) => l.tapIndex));
      let offset = 0;
      while (usedOffsets.has(offset)) offset++;
      if (offset >= this.subnet.guestCapacity) {
        throw new FiredeckError(
          'resource_exhausted',
          `No free address left in the VM subnet (${leases.length} leased)`,
          {
            hint: 'Destroy unused VMs or configure a larger FIREDECK_CIDR.',
          },
        );
      }
      let tapIndex = 0;
      while (usedTaps.has(tapIndex)) tapIndex++;
      const lease: Lease = {
        vmId,
        address: guestAddress(this.subnet, offset),
        tapIndex,
        tap: tapName(this.devicePrefix, tapIndex),
        mac: macFor(vmId),
      };
      this.q('INSERT INTO ip_leases (vm_id, address, tap_index, tap, mac, leased_at) VALUES (?, ?, ?, ?, ?, ?)').run(
        lease.vmId,
        lease.address,
        lease.tapIndex,
        lease.tap,
        lease.mac,
        new Date().toISOString(),
      );
      return lease;
    })();
  }

  release(vmId: string): void {
    this.q('DELETE FROM ip_leases WHERE vm_id = ?').run(vmId);
  }
}

function toLease(raw: unknown): Lease {
  const r = LeaseRow.parse(raw);
  return { vmId: r.vm_id, address: r.address, tapIndex: r.tap_index, tap: r.tap, mac: r.mac };
}
