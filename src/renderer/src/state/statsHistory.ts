import type { VmStatsSample } from '../../../shared/protocol/vmStats';

/** The last few readings of one VM, oldest first, in parallel arrays (what a sparkline draws). */
export interface VmStatsHistory {
  cpuPercent: readonly number[];
  rssBytes: readonly number[];
  /** When the newest reading was taken (daemon clock). */
  at: string;
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
    cpuPercent: appendCapped(history?.cpuPercent, sample.cpuPercent, limit),
    rssBytes: appendCapped(history?.rssBytes, sample.rssBytes, limit),
    at: sample.at,
  };
}

function appendCapped(list: readonly number[] | undefined, value: number, limit: number): number[] {
  if (!list || list.length === 0) return [value];
  const start = list.length + 1 > limit ? list.length + 1 - limit : 0;
  const out = list.slice(start);
  out.push(value);
  return out;
}
