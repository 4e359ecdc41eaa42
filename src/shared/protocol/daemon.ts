import { z } from 'zod';

export const PROTOCOL_VERSION = 1;

export const DriverName = z.enum(['qemu', 'firecracker']);
export type DriverName = z.infer<typeof DriverName>;

/**
 * Whether stopping a VM can ask its guest to shut down: QEMU presses the ACPI power button; Firecracker sends
 * Ctrl-Alt-Del, which reaches the guest only when its kernel has CONFIG_SERIO_I8042 and CONFIG_KEYBOARD_ATKBD.
 * Where it cannot, a stop ends the VM at once (as a power cut) instead of waiting for a shutdown that never comes.
 */
export const GracefulStop = z.object({
  support: z.enum(['supported', 'unsupported', 'unknown']),
  /** What the answer rests on, e.g. the kernel config it was read from. */
  reason: z.string(),
});
export type GracefulStop = z.infer<typeof GracefulStop>;

export const DriverAvailability = z.object({
  name: DriverName,
  available: z.boolean(),
  /** The binary found, when found. */
  binary: z.string().nullable(),
  version: z.string().nullable(),
  /** `kvm` or `tcg` for QEMU; `kvm` for Firecracker; null when unavailable. */
  accel: z.enum(['kvm', 'tcg']).nullable(),
  /** Why the driver is unavailable or degraded, in words an operator can act on. */
  reason: z.string().nullable(),
  /** For Firecracker, of the kernel new images record (FIREDECK_FIRECRACKER_KERNEL); each image keeps its own. */
  gracefulStop: GracefulStop,
  /** How the hypervisor is confined (sandbox, user), in words; absent where the driver does not say. */
  confinement: z.string().nullable().optional(),
});
export type DriverAvailability = z.infer<typeof DriverAvailability>;

/** What the host has free for new VMs, measured when `daemon.info` is answered. */
export const HostResources = z.object({
  /** MemTotal and MemAvailable of /proc/meminfo. */
  memoryTotalBytes: z.number().int().nonnegative(),
  memoryAvailableBytes: z.number().int().nonnegative(),
  /** The file system of the daemon's state dir, where VM disks are made (statfs: size, space free to use). */
  diskPath: z.string(),
  diskTotalBytes: z.number().int().nonnegative(),
  diskFreeBytes: z.number().int().nonnegative(),
});
export type HostResources = z.infer<typeof HostResources>;

export const DaemonInfo = z.object({
  version: z.string(),
  protocolVersion: z.number().int(),
  hostname: z.string(),
  pid: z.number().int(),
  startedAt: z.string(),
  drivers: z.array(DriverAvailability),
  /** The driver new VMs get unless they ask for another. */
  defaultDriver: DriverName.nullable(),
  /** Free memory and disk; absent from daemons that predate it. */
  resources: HostResources.optional(),
});
export type DaemonInfo = z.infer<typeof DaemonInfo>;
