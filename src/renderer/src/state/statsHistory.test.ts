import { describe, expect, it } from 'vitest';
import type { Vm } from '../../../shared/protocol/vm';
import type { VmStatsSample } from '../../../shared/protocol/vmStats';
import { useFleetStore, vmKey } from './fleetStore';
import { STATS_KEPT, pushSample, type VmStatsHistory } from './statsHistory';

const sample = (i: number, vmId = 'vm-0000abcd'): VmStatsSample => ({
  vmId,
  at: new Date(Date.UTC(2026, 0, 1, 0, 0, i)).toISOString(),
  vcpus: 2,
  vcpuPercent: i,
  hostCpuPercent: i * 2,
  guestMemoryBytes: 256 << 20,
  hypervisorRssBytes: i * 1024,
});

describe('stats history ring', () => {
  it('keeps the last readings, oldest first, without touching the previous history', () => {
    let h: VmStatsHistory | undefined;
    const seen: VmStatsHistory[] = [];
    for (let i = 1; i <= 5; i++) {
      h = pushSample(h, sample(i), 3);
      seen.push(h);
    }
    expect(h).toEqual({ vcpuPercent: [3, 4, 5], hypervisorRssBytes: [3072, 4096, 5120], latest: sample(5) });
    expect(seen[0]!.vcpuPercent).toEqual([1]);
    expect(seen[2]!.vcpuPercent).toEqual([1, 2, 3]);
    expect(seen[3]!.vcpuPercent).toEqual([2, 3, 4]);
  });

  it('holds STATS_KEPT readings by default', () => {
    let h: VmStatsHistory | undefined;
    for (let i = 0; i < STATS_KEPT * 2 + 3; i++) h = pushSample(h, sample(i));
    expect(h!.vcpuPercent).toHaveLength(STATS_KEPT);
    expect(h!.vcpuPercent[0]).toBe(STATS_KEPT + 3);
    expect(h!.vcpuPercent[STATS_KEPT - 1]).toBe(STATS_KEPT * 2 + 2);
  });
});

describe('fleet store: stats', () => {
  const vm = (id: string): Vm => ({ id, name: id, state: 'running' }) as Vm;

  it('appends samples of known VMs only, leaves rows and version alone, and forgets removed VMs', () => {
    const store = useFleetStore.getState();
    store.replaceHost('h1', [vm('vm-0000abcd'), vm('vm-0000beef')]);
    const { version, vms } = useFleetStore.getState();
    useFleetStore.getState().applyStats([
      { hostId: 'h1', samples: [sample(1), sample(1, 'vm-0000beef'), sample(1, 'vm-00000404')] },
      { hostId: 'h1', samples: [sample(2)] },
      { hostId: 'h2', samples: [sample(9)] },
    ]);
    let s = useFleetStore.getState();
    expect(s.version).toBe(version);
    expect(s.vms).toBe(vms);
    expect(Object.keys(s.stats).sort()).toEqual([vmKey('h1', 'vm-0000abcd'), vmKey('h1', 'vm-0000beef')]);
    expect(s.stats[vmKey('h1', 'vm-0000abcd')]!.vcpuPercent).toEqual([1, 2]);
    const untouched = s.stats[vmKey('h1', 'vm-0000beef')];

    s.applyStats([{ hostId: 'h1', samples: [sample(3)] }]);
    s = useFleetStore.getState();
    // Rows compare histories by reference: an unchanged VM keeps its object.
    expect(s.stats[vmKey('h1', 'vm-0000beef')]).toBe(untouched);

    s.applyBatch([{ op: 'remove', hostId: 'h1', vmId: 'vm-0000abcd' }]);
    expect(Object.keys(useFleetStore.getState().stats)).toEqual([vmKey('h1', 'vm-0000beef')]);
    useFleetStore.getState().dropHost('h1');
    expect(useFleetStore.getState().stats).toEqual({});
  });
});
