import type { VmStatsSample } from '../../../shared/protocol/vmStats';

/** The last few readings of one VM, oldest first, in parallel arrays (what a sparkline draws). */
export interface VmStatsHistory {
  /** CPU as a share of the VM's vCPUs, 0-100. */
  vcpuPercent: readonly number[];
  /** Resident memory of the VM's hypervisor process on the host. */
  hypervisorRssBytes: readonly number[];
  /** The newest reading whole (its time on the daemon's clock, vCPUs, host-core share, guest memory). */
  latest: VmStatsSample;
}

/** How many readings a VM keeps: a minute at the daemon's default 2 s interval. */
export const STATS_KEPT = 30;

/**
 * A new history with `sample` appended and the oldest readings dropped beyond `limit`. Never mutates `history`:
 * the store hands it to rows that compare by reference.
 */
export function pushSample(
  history: VmStatsHistory | undefined,
  sample: VmStatsSample,
  limit: number = STATS_KEPT,
): VmStatsHistory {
  return {
    vcpuPercent: appendCapped(history?.vcpuPercent, sample.vcpuPercent, limit),
    hypervisorRssBytes: appendCapped(history?.hypervisorRssBytes, sample.hypervisorRssBytes, limit),
    latest: sample,
  };
}

function appendCapped(list: readonly number[] | undefined, value: number, limit: number): number[] {
  if (!list || list.length === 0) return [value];
  const start = list.length + 1 > limit ? list.length + 1 - limit : 0;
  const out = list.slice(start);
  out.push(value);
  return out;
}
