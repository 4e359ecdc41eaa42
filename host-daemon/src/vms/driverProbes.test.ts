import { describe, expect, it } from 'vitest';
import type { DriverAvailability } from '../../../src/shared/protocol/daemon';
import type { VmDriver } from './driver';
import { DriverProbes } from './driverProbes';
import { QemuDriver } from './qemu/qemuDriver';

describe('DriverProbes', () => {
  it('keeps the first answer of a real driver', async () => {
    const qemu = new QemuDriver({ qemuAccel: 'tcg' });
    let calls = 0;
    const probe = qemu.availability.bind(qemu);
    qemu.availability = () => {
      calls += 1;
      return probe();
    };
    const probes = new DriverProbes([qemu]);
    const [a, b] = await Promise.all([probes.all(), probes.all()]);
    const c = await probes.all();
    expect(calls).toBe(1);
    expect(b).toBe(a);
    expect(c).toBe(a);
    expect(a[0]?.name).toBe('qemu');
  });

  it('does not keep a probe that failed: the next call probes again', async () => {
    let calls = 0;
    const answer: DriverAvailability = {
      name: 'qemu',
      available: false,
      binary: null,
      version: null,
      accel: null,
      reason: 'test',
      gracefulStop: { support: 'unknown', reason: 'test' },
    };
    const driver = {
      name: 'qemu',
      availability: async () => {
        calls += 1;
        if (calls === 1) throw new Error('probe broke');
        return answer;
      },
    } as unknown as VmDriver;
    const probes = new DriverProbes([driver]);
    await expect(probes.all()).rejects.toThrow('probe broke');
    expect(await probes.all()).toEqual([answer]);
    expect(await probes.all()).toEqual([answer]);
    expect(calls).toBe(2);
  });
});
