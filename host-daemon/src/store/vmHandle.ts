import { z } from 'zod';

/**
 * Where a running VM's serial console can be read (and, for sockets, written): QEMU's chardev socket, a file, or
 * a FIFO the hypervisor writes into (Firecracker's `serial_out_path`; nothing lands on disk but the capped log).
 */
export type ConsoleSource =
  | { kind: 'unix-socket'; path: string }
  | { kind: 'file'; path: string }
  | { kind: 'fifo'; path: string };

/** What identifies a live VM process, persisted so that a restarted daemon can adopt it. */
export interface VmHandle {
  pid: number;
  /** The process's command line as /proc shows it, joined by NUL, used to verify adoption. */
  cmdline: string;
  /** Control socket (QMP for QEMU, API socket for Firecracker). */
  controlSocket: string;
  console: ConsoleSource;
}

const ConsoleSourceSchema: z.ZodType<ConsoleSource> = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('unix-socket'), path: z.string() }),
  z.object({ kind: z.literal('file'), path: z.string() }),
  z.object({ kind: z.literal('fifo'), path: z.string() }),
]);

/** A handle as the store reads it back from its JSON column. */
export const VmHandleSchema: z.ZodType<VmHandle> = z.object({
  pid: z.number().int().positive(),
  cmdline: z.string(),
  controlSocket: z.string(),
  console: ConsoleSourceSchema,
});
