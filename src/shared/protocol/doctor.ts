import { z } from 'zod';

/**
 * `firedeckd doctor --json`: what the host check found, for the host's shell and for the app (which runs it over
 * SSH before installing or upgrading the daemon). `fail` findings block the daemon from working.
 */
export const DoctorStatus = z.enum(['ok', 'info', 'warn', 'fail']);
export type DoctorStatus = z.infer<typeof DoctorStatus>;

export const DoctorFinding = z
  .object({
    /** Which check: config, kvm, qemu, firecracker, driver, bridge, nftables, disk, socket, group, cgroup. */
    check: z.string(),
    status: DoctorStatus,
    message: z.string(),
    /** How to fix it, as a command or a sentence; absent when there is nothing to do. */
    fix: z.string().optional(),
  })
  .strict();
export type DoctorFinding = z.infer<typeof DoctorFinding>;

export const DoctorReport = z
  .object({
    hostname: z.string(),
    version: z.string(),
    findings: z.array(DoctorFinding),
    /** How many findings are `fail`; the command exits non-zero when this is not 0. */
    blocking: z.number().int().nonnegative(),
  })
  .strict();
export type DoctorReport = z.infer<typeof DoctorReport>;
