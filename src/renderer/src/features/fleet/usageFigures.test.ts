import { describe, expect, it } from 'vitest';
import type { VmStatsSample } from '../../../../shared/protocol/vmStats';
import { formatCpu, formatMib, hypervisorName, usageFigures } from './usageFigures';

const sample = (over: Partial<VmStatsSample> = {}): VmStatsSample => ({
  vmId: 'vm-0000abcd',
  at: '2026-01-01T00:00:00.000Z',
  vcpus: 2,
  vcpuPercent: 37.2,
  hostCpuPercent: 74.4,
  guestMemoryBytes: 256 * 1024 * 1024,
  hypervisorRssBytes: 503 * 1024 * 1024,
  ...over,
});

describe('usage figures', () => {
  it('formats memory in MiB, large figures in GiB', () => {
    expect(formatMib(183 * 1024 * 1024 + 1000)).toBe('183 MiB');
    expect(formatMib(12 * 1024 * 1024 * 1024)).toBe('12.0 GiB');
    expect(formatCpu(3.14159)).toBe('3.1%');
    expect(formatCpu(187.6)).toBe('188%');
  });

  it('names the hypervisor process by driver', () => {
    expect(hypervisorName('qemu')).toBe('QEMU');
    expect(hypervisorName('firecracker')).toBe('Firecracker');
  });

  it("labels the guest's memory and the hypervisor's RSS as two figures, never one of the other", () => {
    const f = usageFigures(sample(), 'qemu');
    expect(f.guestMemory).toBe('Guest memory 256 MiB');
    expect(f.hypervisorMemory).toBe('QEMU process 503 MiB RSS');
    expect(f.hypervisorRss).toBe('503 MiB');
    expect(`${f.guestMemory} · ${f.hypervisorMemory}`).not.toMatch(/ of /);
    expect(f.memoryTitle).toContain('resident memory');
    expect(usageFigures(sample(), 'firecracker').hypervisorMemory).toBe('Firecracker process 503 MiB RSS');
  });

  it("gives CPU as a share of the VM's vCPUs, with the host-core figure in its explanation", () => {
    const f = usageFigures(sample(), 'qemu');
    expect(f.cpu).toBe('37%');
    expect(f.cpuOf).toBe('of 2 vCPUs');
    expect(f.cpuTitle).toContain('100% = all of them busy');
    expect(f.cpuTitle).toContain('74% of one host core');
    expect(usageFigures(sample({ vcpus: 1, vcpuPercent: 4.25 }), 'qemu').cpuOf).toBe('of 1 vCPU');
    expect(usageFigures(sample({ vcpus: 1, vcpuPercent: 4.25 }), 'qemu').cpu).toBe('4.3%');
  });
});
