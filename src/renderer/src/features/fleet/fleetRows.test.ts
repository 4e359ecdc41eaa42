import { describe, expect, it } from 'vitest';
import type { Vm } from '../../../../shared/protocol/vm';
import type { FleetVm } from '../../state/fleetStore';
import { fleetRows, formatUptime, uptimeSeconds } from './fleetRows';

const now = Date.parse('2026-01-01T12:00:00Z');

function vm(i: number, patch: Partial<Vm> = {}): Vm {
  return {
    id: `vm-${i.toString(16).padStart(8, '0')}`,
    name: `vm-${i}`,
    kind: i % 2 ? 'cli' : 'browser',
    owner: `user${i % 7}@example.org`,
    image: 'cli',
    driver: 'qemu',
    vcpus: 1,
    memoryMib: 256,
    diskMib: 4096,
    address: `10.213.0.${(i % 250) + 2}`,
    tap: null,
    mac: null,
    pid: null,
    state: 'running',
    ready: [],
    createdAt: '2026-01-01T00:00:00Z',
    updatedAt: '2026-01-01T00:00:00Z',
    startedAt: new Date(now - i * 60_000).toISOString(),
    expiresAt: null,
    lastError: null,
    ...patch,
  };
}

const rows: FleetVm[] = [
  { hostId: 'local', vm: vm(3) },
  { hostId: 'h-00000001', vm: vm(1, { state: 'stopped', startedAt: null }) },
  { hostId: 'local', vm: vm(12, { address: '10.213.0.100' }) },
  { hostId: 'h-00000001', vm: vm(2, { owner: 'alice@corp.example' }) },
];
const hostNames = { local: 'local', 'h-00000001': 'rack-b' };
const base = { text: '', state: '', hostNames, now, sort: { key: 'name' as const, dir: 1 as const } };

describe('fleet rows', () => {
  it('filters by free text over owner, host and address, and by exact state', () => {
    expect(fleetRows(rows, { ...base, text: 'alice' }).map((r) => r.vm.name)).toEqual(['vm-2']);
    expect(fleetRows(rows, { ...base, text: 'RACK-B' }).map((r) => r.vm.name)).toEqual(['vm-1', 'vm-2']);
    expect(fleetRows(rows, { ...base, text: '10.213.0.100' }).map((r) => r.vm.name)).toEqual(['vm-12']);
    expect(fleetRows(rows, { ...base, state: 'stopped' }).map((r) => r.vm.name)).toEqual(['vm-1']);
  });

  it('sorts addresses numerically and uptime with stopped VMs last when descending', () => {
    const byAddr = fleetRows(rows, { ...base, sort: { key: 'address', dir: 1 } }).map((r) => r.vm.address);
    expect(byAddr).toEqual(['10.213.0.3', '10.213.0.4', '10.213.0.5', '10.213.0.100']);
    const byUptime = fleetRows(rows, { ...base, sort: { key: 'uptime', dir: -1 } }).map((r) => r.vm.name);
    expect(byUptime).toEqual(['vm-12', 'vm-3', 'vm-2', 'vm-1']);
  });

  it('computes and formats uptime only for running VMs', () => {
    expect(uptimeSeconds(rows[0]!, now)).toBe(180);
    expect(uptimeSeconds(rows[1]!, now)).toBeNull();
    expect(formatUptime(null)).toBe('—');
    expect(formatUptime(65)).toBe('1m 5s');
    expect(formatUptime(3 * 3600 + 120)).toBe('3h 2m');
    expect(formatUptime(2 * 86400 + 3600)).toBe('2d 1h');
  });

  it('handles 500 VMs with a filter and sort well inside one frame', () => {
    const many: FleetVm[] = Array.from({ length: 500 }, (_, i) => ({ hostId: 'local', vm: vm(i) }));
    const t0 = performance.now();
    for (let k = 0; k < 10; k++) fleetRows(many, { ...base, text: 'user3', sort: { key: 'uptime', dir: -1 } });
    expect((performance.now() - t0) / 10).toBeLessThan(16);
  });
});
