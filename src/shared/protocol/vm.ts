import { z } from 'zod';
import { IsoTime, OwnerId, SafeName, VmId } from './common';
import { MAX_FRAME_BYTES } from '../rpc/framing';
import { DriverName } from './daemon';

export const VmKind = z.enum(['cli', 'browser']);
export type VmKind = z.infer<typeof VmKind>;

/** creating → booting → running → stopping → stopped | crashed | destroyed */
/** `destroying`: a destroy has begun (disks may already be gone); a restarted daemon finishes it. */
export const VmState = z.enum([
  'creating',
  'booting',
  'running',
  'stopping',
  'stopped',
  'crashed',
  'destroying',
  'destroyed',
]);
export type VmState = z.infer<typeof VmState>;

export const Vm = z.object({
  id: VmId,
  name: SafeName,
  kind: VmKind,
  owner: OwnerId,
  image: z.string(),
  driver: DriverName,
  vcpus: z.number().int(),
  memoryMib: z.number().int(),
  diskMib: z.number().int(),
  address: z.string().nullable(),
  tap: z.string().nullable(),
  mac: z.string().nullable(),
  pid: z.number().int().nullable(),
  state: VmState,
  /** Readiness markers seen on the serial console since the last boot (`vm`, `sshd`, `vnc`, `agent`). */
  ready: z.array(z.string()),
  createdAt: IsoTime,
  updatedAt: IsoTime,
  startedAt: IsoTime.nullable(),
  /** When the reaper destroys it (browser VMs); null for VMs that live until deleted. */
  expiresAt: IsoTime.nullable(),
  /** The last error that moved it to `crashed`, in words. */
  lastError: z.string().nullable(),
  /** The guest's SSH host key (`<type> <base64>`) from its FIREDECK-HOSTKEY marker, pinned for `firedeckd shell`. */
  hostKey: z.string().nullable().optional(),
  /**
   * Since when its hypervisor's monitor has missed the health probe's deadline (QMP `query-status`, QEMU VMs);
   * null while it answers. Watched by the running daemon only: a restarted daemon starts with null and probes.
   */
  unresponsiveSince: IsoTime.nullable().optional(),
});
export type Vm = z.infer<typeof Vm>;

/**
 * What `vm.create` gives a VM of each kind that does not ask for its size. A CLI VM runs Codex, Claude Code and
 * Gemini CLI (Node, and Claude's native binary): a login of Gemini's was killed for memory in 256 MiB.
 */
export const VM_KIND_DEFAULTS: Readonly<Record<VmKind, { vcpus: number; memoryMib: number; diskMib: number }>> = {
  cli: { vcpus: 1, memoryMib: 1024, diskMib: 4096 },
  browser: { vcpus: 2, memoryMib: 2048, diskMib: 6144 },
};

/** Bounds of `vm.create`'s sizes (the form checks them before the daemon does). */
export const VM_SIZE_LIMITS = {
  vcpus: { min: 1, max: 32 },
  memoryMib: { min: 64, max: 262144 },
  diskMib: { min: 256, max: 1048576 },
} as const;

export const VmCreateParams = z
  .object({
    name: SafeName,
    kind: VmKind,
    owner: OwnerId,
    /** A published image name (`cli`, `browser`, `test`), optionally pinned as `name@version`. */
    image: z.string().regex(/^[a-z0-9][a-z0-9-]{0,62}(@[0-9A-Za-z.-]{1,64})?$/, 'image must be name or name@version'),
    driver: DriverName.optional(),
    vcpus: z.number().int().min(VM_SIZE_LIMITS.vcpus.min).max(VM_SIZE_LIMITS.vcpus.max).optional(),
    memoryMib: z.number().int().min(VM_SIZE_LIMITS.memoryMib.min).max(VM_SIZE_LIMITS.memoryMib.max).optional(),
    diskMib: z.number().int().min(VM_SIZE_LIMITS.diskMib.min).max(VM_SIZE_LIMITS.diskMib.max).optional(),
    /** Start right after creation (default true). */
    start: z.boolean().optional(),
    sessionId: z
      .string()
      .regex(/^[A-Za-z0-9-]{1,64}$/)
      .optional(),
  })
  .strict();
export type VmCreateParams = z.infer<typeof VmCreateParams>;

export const VmRef = z.object({ id: VmId }).strict();
export const VmStopParams = z
  .object({
    id: VmId,
    /** Seconds to wait for a graceful power-down before killing (default 30). */
    timeoutSeconds: z.number().int().min(0).max(3600).optional(),
    force: z.boolean().optional(),
  })
  .strict();
export const VmWaitReadyParams = z
  .object({
    id: VmId,
    marker: z
      .string()
      .regex(/^[a-z][a-z0-9-]{0,31}$/)
      .optional(),
    timeoutSeconds: z.number().int().min(1).max(3600).optional(),
  })
  .strict();
export const VmConsoleTailParams = z
  .object({
    id: VmId,
    /** Last N lines (default 200). */
    lines: z.number().int().min(1).max(100000).optional(),
  })
  .strict();
export const VmConsoleTail = z.object({ lines: z.array(z.string()), truncated: z.boolean() });

/**
 * A console line longer than this many characters is cut into pieces of this many: the log view wraps it so,
 * and `vm.console.tail` returns it so, whatever a guest writes without a newline.
 */
export const CONSOLE_LINE_MAX_CHARS = 8192;

/**
 * At most this many bytes of lines (as JSON) in one `vm.console.tail` reply: the newest lines that fit, with
 * `truncated` set, so that the reply stays under the frame cap with room for its envelope.
 */
export const CONSOLE_TAIL_MAX_BYTES = MAX_FRAME_BYTES - 64 * 1024;
