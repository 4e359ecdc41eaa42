import { z } from 'zod';
import { IsoTime, VmId } from './common';

/**
 * One reading of a running VM over the last sampling interval, as the host can measure it without the guest's
 * help (no balloon device or guest agent reports the guest's own use):
 *  - CPU as a share of the VM's vCPUs (`vcpuPercent`: 100 = all of them busy the whole interval), and the same
 *    CPU time as a share of one host core (`hostCpuPercent`: a 2-vCPU VM busy on both shows about 200);
 *  - memory as two separate figures: what the guest was given (`guestMemoryBytes`, its configured RAM) and
 *    what its hypervisor process holds on the host (`hypervisorRssBytes`, resident memory of QEMU or
 *    Firecracker: the guest RAM it has touched plus the emulator's own). Neither is "memory the guest uses".
 */
export const VmStatsSample = z.object({
  vmId: VmId,
  at: IsoTime,
  /** The VM's vCPUs, which `vcpuPercent` is a share of. */
  vcpus: z.number().int().positive(),
  /**
   * The hypervisor process's CPU time over the interval, as a share of `vcpus` host cores, 0-100. Its threads
   * beyond the vCPUs (I/O, emulation) count too, so the figure is capped at 100.
   */
  vcpuPercent: z.number().min(0).max(100),
  /** The same CPU time as a share of one host core, not capped. */
  hostCpuPercent: z.number().min(0),
  /** The guest's configured memory. */
  guestMemoryBytes: z.number().int().min(0),
  /** Resident memory of the hypervisor process on the host. */
  hypervisorRssBytes: z.number().int().min(0),
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
