import fs from 'node:fs';
import { performance } from 'node:perf_hooks';
import type { DaemonEvent } from '../../../src/shared/protocol/events';
import type { Vm, VmState } from '../../../src/shared/protocol/vm';
import type { VmStatsSample } from '../../../src/shared/protocol/vmStats';
import { statFields } from '../system/processes';

/** What /proc tells about one process at one moment. */
export interface ProcUsage {
  /** utime + stime, in clock ticks. */
  cpuTicks: number;
  /** Start time after boot, in clock ticks: with the pid, it tells a process from a later one reusing the pid. */
  startTicks: number;
  rssBytes: number;
}

/** utime + stime and the start time from `/proc/<pid>/stat` (fields 14, 15 and 22). */
export function parseProcStat(text: string): { cpuTicks: number; startTicks: number } {
  const fields = statFields(text);
  if (!fields) throw new Error('not a /proc/<pid>/stat line');
  const utime = Number(fields[14 - 3]);
  const stime = Number(fields[15 - 3]);
  const start = Number(fields[22 - 3]);
  if (!Number.isFinite(utime) || !Number.isFinite(stime) || !Number.isFinite(start)) {
    throw new Error('/proc/<pid>/stat has too few fields');
  }
  return { cpuTicks: utime + stime, startTicks: start };
}

/** Resident memory in bytes from `/proc/<pid>/status` (`VmRSS: <n> kB`); 0 for a process without memory. */
export function parseRssBytes(status: string): number {
  const m = /^VmRSS:\s+(\d+)\s+kB$/m.exec(status);
  // Kernel threads and zombies have no VmRSS line.
  return m ? Number(m[1]) * 1024 : 0;
}

/** One process's usage, or null when it is gone (or went between the two reads). */
export function readProcUsage(pid: number, procRoot = '/proc'): ProcUsage | null {
  try {
    const stat = parseProcStat(fs.readFileSync(`${procRoot}/${pid}/stat`, 'utf8'));
    const rssBytes = parseRssBytes(fs.readFileSync(`${procRoot}/${pid}/status`, 'utf8'));
    return { ...stat, rssBytes };
  } catch {
    return null;
  }
}

/**
 * CPU use between two readings of the same process as a percentage of one core: CPU seconds spent over wall
 * seconds passed. Never negative; 0 when no wall time passed.
 */
export function cpuPercent(
  before: { cpuTicks: number; atMs: number },
  after: { cpuTicks: number; atMs: number },
  clockTicksPerSecond: number,
): number {
  const wallSeconds = (after.atMs - before.atMs) / 1000;
  if (wallSeconds <= 0) return 0;
  const cpuSeconds = Math.max(0, after.cpuTicks - before.cpuTicks) / clockTicksPerSecond;
  return (cpuSeconds / wallSeconds) * 100;
}

/**
 * A share of one host core (what `cpuPercent` gives) as a share of a VM's vCPUs: 100 when the process used as
 * much CPU time as all `vcpus` cores could give. Capped at 100 (the hypervisor's own threads can push its CPU
 * time past its vCPUs'); 0 for a reading that is not a number.
 */
export function vcpuPercent(hostCpuPercent: number, vcpus: number): number {
  if (!Number.isFinite(hostCpuPercent) || hostCpuPercent <= 0) return 0;
  return Math.min(100, hostCpuPercent / Math.max(1, Math.floor(vcpus)));
}

/** One decimal, which is all a percentage on screen shows. */
const oneDecimal = (n: number): number => Math.round(n * 10) / 10;

/** Linux reports /proc times in USER_HZ, which is 100 on every architecture Node runs the daemon on. */
export const USER_HZ = 100;
export const DEFAULT_STATS_INTERVAL_MS = 2000;
const SAMPLED_STATES: ReadonlySet<VmState> = new Set(['booting', 'running', 'stopping']);

export interface VmStatsSamplerOptions {
  /** The VMs to consider; those in a live state with a pid are sampled. */
  listVms: () => Vm[];
  emit: (event: DaemonEvent) => void;
  intervalMs?: number;
  clockTicksPerSecond?: number;
  procRoot?: string;
}

/**
 * Samples every live VM's hypervisor process and publishes `vm.stats`: its CPU time (as a share of the VM's
 * vCPUs and of one host core) and resident memory, beside the guest's configured memory.
 *
 * It runs always rather than only while someone subscribes: a tick is two small /proc reads per live VM (a few
 * microseconds each, ~1k reads per tick at 500 VMs), an event with no listeners costs a loop over nothing, and
 * CPU % needs a previous reading, so a sampler started on demand would answer its first `vm.stats` call or
 * event with nothing. Ticks with no live VM publish nothing.
 */
export class VmStatsSampler {
  readonly intervalMs: number;
  private readonly clockTicks: number;
  private readonly procRoot: string;
  /** vmId → the previous reading of its process, for the CPU delta. */
  private readonly previous = new Map<string, { pid: number; startTicks: number; cpuTicks: number; atMs: number }>();
  private latestSamples = new Map<string, VmStatsSample>();
  private timer: NodeJS.Timeout | null = null;

  constructor(private readonly opts: VmStatsSamplerOptions) {
    this.intervalMs = opts.intervalMs ?? DEFAULT_STATS_INTERVAL_MS;
    this.clockTicks = opts.clockTicksPerSecond ?? USER_HZ;
    this.procRoot = opts.procRoot ?? '/proc';
  }

  start(): void {
    if (this.timer) return;
    this.tick();
    this.timer = setInterval(() => this.tick(), this.intervalMs);
    // Sampling must never keep the daemon alive on its own.
    this.timer.unref();
  }

  close(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  /** The newest sample of each live VM (optionally only `ids`). */
  latest(ids?: readonly string[]): VmStatsSample[] {
    if (ids === undefined) return [...this.latestSamples.values()];
    return ids.flatMap((id) => {
      const s = this.latestSamples.get(id);
      return s ? [s] : [];
    });
  }

  /** One sampling round; returns what it published. A VM's first reading only sets the baseline. */
  tick(): VmStatsSample[] {
    const atMs = performance.now();
    const at = new Date().toISOString();
    const samples = new Map<string, VmStatsSample>();
    const seen = new Set<string>();
    for (const vm of this.opts.listVms()) {
      if (vm.pid === null || !SAMPLED_STATES.has(vm.state)) continue;
      const usage = readProcUsage(vm.pid, this.procRoot);
      if (!usage) continue;
      seen.add(vm.id);
      const before = this.previous.get(vm.id);
      this.previous.set(vm.id, { pid: vm.pid, startTicks: usage.startTicks, cpuTicks: usage.cpuTicks, atMs });
      if (!before || before.pid !== vm.pid || before.startTicks !== usage.startTicks) continue;
      const cpu = cpuPercent(before, { cpuTicks: usage.cpuTicks, atMs }, this.clockTicks);
      const vcpus = Math.max(1, vm.vcpus);
      samples.set(vm.id, {
        vmId: vm.id,
        at,
        vcpus,
        vcpuPercent: oneDecimal(vcpuPercent(cpu, vcpus)),
        hostCpuPercent: oneDecimal(cpu),
        guestMemoryBytes: Math.max(0, vm.memoryMib) * 1024 * 1024,
        hypervisorRssBytes: usage.rssBytes,
      });
    }
    for (const id of this.previous.keys()) if (!seen.has(id)) this.previous.delete(id);
    this.latestSamples = samples;
    const list = [...samples.values()];
    if (list.length > 0) this.opts.emit({ type: 'vm.stats', samples: list });
    return list;
  }
}
