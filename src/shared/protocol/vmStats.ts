import { z } from 'zod';
import { IsoTime, VmId } from './common';

/**
 * One reading of a running VM's hypervisor process. `cpuPercent` is a share of one host core over the last
 * sampling interval (a VM busy on two cores shows about 200); `rssBytes` is the process's resident memory.
 */
export const VmStatsSample = z.object({
  vmId: VmId,
  at: IsoTime,
  cpuPercent: z.number().min(0),
  rssBytes: z.number().int().min(0),
});
export type VmStatsSample = z.infer<typeof VmStatsSample>;

export const VmStatsParams = z
  .object({
    /** Only these VMs; all running VMs when omitted. */
    ids: z.array(VmId).max(10_000).optional(),
  })
  .strict();
export const VmStatsResult = z.object({
  /** How often the daemon samples, so clients can size their history. */
  intervalMs: z.number().int().positive(),
  samples: z.array(VmStatsSample),
});
export type VmStatsResult = z.infer<typeof VmStatsResult>;
