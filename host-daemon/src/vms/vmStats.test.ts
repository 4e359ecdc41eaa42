import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { performance } from 'node:perf_hooks';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DaemonEvent } from '../../../src/shared/protocol/events';
import type { Vm } from '../../../src/shared/protocol/vm';
import {
  VmStatsSampler,
  cpuPercent,
  parseProcStat,
  parseRssBytes,
  readProcUsage,
  USER_HZ,
  vcpuPercent,
} from './vmStats';

describe('/proc parsing', () => {
  it('counts stat fields from the last paren, whatever the command name holds', () => {
    // Fields 3.. of a real line, behind a command name with spaces and parens.
    const rest = 'S 1 2 3 0 -1 4194560 100 0 0 0 1234 567 0 0 20 0 3 0 98765 1000 200 18446744073709551615';
    expect(parseProcStat(`4242 (qemu) (x) y) ${rest}`)).toEqual({ cpuTicks: 1234 + 567, startTicks: 98765 });
    expect(() => parseProcStat('4242 (short) S 1 2')).toThrow(/too few fields/);
    expect(() => parseProcStat('garbage')).toThrow(/stat/);
  });

  it('reads VmRSS in kB as bytes, 0 when there is none', () => {
    expect(parseRssBytes('Name:\tqemu\nVmPeak:\t  999 kB\nVmRSS:\t  20480 kB\nRssAnon:\t 1 kB\n')).toBe(20480 * 1024);
    expect(parseRssBytes('Name:\tkthreadd\nState:\tS (sleeping)\n')).toBe(0);
  });

  it('turns tick deltas over wall time into a share of one core', () => {
    expect(cpuPercent({ cpuTicks: 100, atMs: 0 }, { cpuTicks: 300, atMs: 2000 }, 100)).toBe(100);
    expect(cpuPercent({ cpuTicks: 0, atMs: 0 }, { cpuTicks: 300, atMs: 1000 }, 100)).toBe(300);
    expect(cpuPercent({ cpuTicks: 50, atMs: 0 }, { cpuTicks: 50, atMs: 1000 }, 100)).toBe(0);
    expect(cpuPercent({ cpuTicks: 50, atMs: 5 }, { cpuTicks: 60, atMs: 5 }, 100)).toBe(0);
    expect(cpuPercent({ cpuTicks: 50, atMs: 0 }, { cpuTicks: 40, atMs: 1000 }, 100)).toBe(0);
  });

  it("turns a share of one host core into a share of the VM's vCPUs: 100 = all of them busy", () => {
    // One vCPU: the same figure.
    expect(vcpuPercent(37, 1)).toBe(37);
    // Two vCPUs: one core's worth is half of them, both cores' worth is all of them.
    expect(vcpuPercent(100, 2)).toBe(50);
    expect(vcpuPercent(200, 2)).toBe(100);
    expect(vcpuPercent(50, 4)).toBe(12.5);
    // The hypervisor's own threads can take it past its vCPUs: capped, never above 100.
    expect(vcpuPercent(230, 2)).toBe(100);
    expect(vcpuPercent(101, 1)).toBe(100);
    // Nothing measured, or nonsense in: 0; a vCPU count below one counts as one.
    expect(vcpuPercent(0, 2)).toBe(0);
    expect(vcpuPercent(-5, 2)).toBe(0);
    expect(vcpuPercent(Number.NaN, 2)).toBe(0);
    expect(vcpuPercent(40, 0)).toBe(40);
  });

  it('returns null for a process that does not exist', () => {
    expect(readProcUsage(2 ** 22 + 1)).toBeNull();
  });
});

describe('CPU and memory of real processes', () => {
  let busy: ChildProcess;
  let idle: ChildProcess;

  const child = async (code: string): Promise<ChildProcess> => {
    const p = spawn(process.execPath, ['-e', code], { stdio: ['ignore', 'pipe', 'inherit'] });
    const [chunk] = (await once(p.stdout!, 'data')) as [Buffer];
    expect(chunk.toString()).toContain('up');
    return p;
  };

  beforeAll(async () => {
    // Pipes are synchronous on Linux, so "up" is out before the busy loop starts.
    busy = await child("process.stdout.write('up\\n'); for (;;) {}");
    idle = await child("process.stdout.write('up\\n'); setInterval(() => undefined, 1 << 30);");
  });

  afterAll(async () => {
    for (const p of [busy, idle]) {
      if (!p || p.exitCode !== null || p.signalCode !== null) continue;
      const exited = once(p, 'exit');
      p.kill('SIGKILL');
      await exited;
    }
  });

  /** Waits until the busy child has burnt `ticks` more CPU ticks (a measurement needs time to pass). */
  const untilBusyBurnt = async (from: number, ticks: number): Promise<void> => {
    const deadline = Date.now() + 30_000;
    for (;;) {
      const now = readProcUsage(busy.pid!);
      if (now && now.cpuTicks - from >= ticks) return;
      if (Date.now() > deadline) throw new Error(`busy child burnt fewer than ${ticks} ticks in 30 s`);
      await new Promise((r) => setTimeout(r, 50));
    }
  };

  it('shows a busy process near a full core and an idle one near zero', async () => {
    const t0 = performance.now();
    const busy0 = readProcUsage(busy.pid!)!;
    const idle0 = readProcUsage(idle.pid!)!;
    expect(busy0).not.toBeNull();
    expect(idle0).not.toBeNull();
    await untilBusyBurnt(busy0.cpuTicks, 80);
    const t1 = performance.now();
    const busy1 = readProcUsage(busy.pid!)!;
    const idle1 = readProcUsage(idle.pid!)!;
    const busyPct = cpuPercent({ cpuTicks: busy0.cpuTicks, atMs: t0 }, { cpuTicks: busy1.cpuTicks, atMs: t1 }, USER_HZ);
    const idlePct = cpuPercent({ cpuTicks: idle0.cpuTicks, atMs: t0 }, { cpuTicks: idle1.cpuTicks, atMs: t1 }, USER_HZ);
    // The machine is shared with QEMU guests under TCG, so "busy" is a clear share rather than exactly 100.
    expect(busyPct).toBeGreaterThan(25);
    expect(busyPct).toBeLessThanOrEqual(110);
    expect(idlePct).toBeLessThan(5);
    // Node's heap alone is tens of MiB; a bogus unit (pages, kB) would be far off.
    expect(busy1.rssBytes).toBeGreaterThan(10 * 1024 * 1024);
    expect(busy1.rssBytes).toBeLessThan(2 * 1024 * 1024 * 1024);
    expect(busy1.startTicks).toBe(busy0.startTicks);
  });

  it('publishes vm.stats for live VMs once a baseline exists, and skips VMs that are not live', async () => {
    const vm = (id: string, pid: number | null, state: Vm['state'], vcpus = 1): Vm =>
      ({ id, pid, state, vcpus, memoryMib: 256 }) as Vm;
    const vms = [
      vm('vm-000000b1', busy.pid!, 'running'),
      vm('vm-000000b2', idle.pid!, 'booting'),
      vm('vm-000000b3', busy.pid!, 'stopped'),
      vm('vm-000000b4', null, 'running'),
      // The same busy process seen as a 4-vCPU VM: its one busy core is a quarter of its vCPUs.
      vm('vm-000000b5', busy.pid!, 'running', 4),
    ];
    const events: DaemonEvent[] = [];
    const sampler = new VmStatsSampler({ listVms: () => vms, emit: (e) => events.push(e) });
    expect(sampler.intervalMs).toBe(2000);

    const from = readProcUsage(busy.pid!)!.cpuTicks;
    expect(sampler.tick()).toEqual([]);
    expect(events).toEqual([]);
    await untilBusyBurnt(from, 30);
    const samples = sampler.tick();
    expect(samples.map((s) => s.vmId)).toEqual(['vm-000000b1', 'vm-000000b2', 'vm-000000b5']);
    expect(events).toEqual([{ type: 'vm.stats', samples }]);
    const [b1, b2, b5] = samples;
    expect(b1!.vcpuPercent).toBeGreaterThan(b2!.vcpuPercent);
    expect(b2!.vcpuPercent).toBeLessThan(5);
    // One vCPU: its share is its share of one core; four vCPUs: a quarter of that (both within a rounding step).
    expect(b1!.vcpus).toBe(1);
    expect(Math.abs(b1!.vcpuPercent - Math.min(100, b1!.hostCpuPercent))).toBeLessThan(0.11);
    expect(b5!.vcpus).toBe(4);
    expect(Math.abs(b5!.vcpuPercent - b5!.hostCpuPercent / 4)).toBeLessThan(0.11);
    expect(b5!.vcpuPercent).toBeLessThan(30);
    // Memory: the guest's configured size and the process's resident set, two different figures.
    expect(b1!.guestMemoryBytes).toBe(256 * 1024 * 1024);
    expect(b1!.hypervisorRssBytes).toBeGreaterThan(10 * 1024 * 1024);
    expect(Number.isNaN(Date.parse(b1!.at))).toBe(false);
    expect(sampler.latest(['vm-000000b2', 'vm-000000b3'])).toEqual([b2]);

    // A VM whose process went away drops out.
    vms[0] = vm('vm-000000b1', null, 'stopped');
    sampler.tick();
    expect(sampler.latest().map((s) => s.vmId)).toEqual(['vm-000000b2', 'vm-000000b5']);
    sampler.close();
  });
});
