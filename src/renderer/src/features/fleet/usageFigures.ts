import type { DriverName } from '../../../../shared/protocol/daemon';
import type { VmStatsSample } from '../../../../shared/protocol/vmStats';

/** A human figure for memory: MiB below 10 GiB (what a VM's configured size is given in), else GiB. */
export function formatMib(bytes: number): string {
  const mib = bytes / (1024 * 1024);
  if (mib >= 10 * 1024) return `${(mib / 1024).toFixed(1)} GiB`;
  return `${Math.round(mib)} MiB`;
}

export function formatCpu(percent: number): string {
  return `${percent < 10 ? percent.toFixed(1) : Math.round(percent)}%`;
}

/** The program that runs a VM of this driver on the host, as an operator knows it from `ps`. */
export function hypervisorName(driver: DriverName): string {
  return driver === 'firecracker' ? 'Firecracker' : 'QEMU';
}

/** What the usage cells and the VM view say, each figure with what it is a figure of. */
export interface UsageFigures {
  /** CPU as a share of the VM's vCPUs, e.g. `37%`. */
  cpu: string;
  /** e.g. `of 2 vCPUs`. */
  cpuOf: string;
  /** The CPU figure explained, with the same time as a share of one host core. */
  cpuTitle: string;
  /** e.g. `Guest memory 256 MiB`: what the guest was given (the host cannot see how much of it the guest uses). */
  guestMemory: string;
  /** e.g. `QEMU process 503 MiB RSS`. */
  hypervisorMemory: string;
  /** The hypervisor's resident memory alone, e.g. `503 MiB` (a table cell's figure). */
  hypervisorRss: string;
  /** Both memory figures explained. */
  memoryTitle: string;
}

export function usageFigures(sample: VmStatsSample, driver: DriverName): UsageFigures {
  const hv = hypervisorName(driver);
  const vcpus = `${sample.vcpus} vCPU${sample.vcpus === 1 ? '' : 's'}`;
  const rss = formatMib(sample.hypervisorRssBytes);
  const guest = formatMib(sample.guestMemoryBytes);
  return {
    cpu: formatCpu(sample.vcpuPercent),
    cpuOf: `of ${vcpus}`,
    cpuTitle:
      `CPU as a share of the VM's ${vcpus} (100% = all of them busy); ` +
      `the ${hv} process used ${formatCpu(sample.hostCpuPercent)} of one host core`,
    guestMemory: `Guest memory ${guest}`,
    hypervisorMemory: `${hv} process ${rss} RSS`,
    hypervisorRss: rss,
    memoryTitle:
      `Guest memory ${guest}: what the VM was given. ${hv} process ${rss} RSS: resident memory of its ` +
      `hypervisor process on the host (the guest memory it has touched plus ${hv}'s own)`,
  };
}
