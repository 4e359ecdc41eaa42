import { z } from 'zod';
import { IsoTime } from './common';

/** The most entries one `audit.list` page brings, and how many it brings unless told. */
export const AUDIT_PAGE_MAX = 500;
export const AUDIT_PAGE_DEFAULT = 100;

/**
 * One row of the daemon's append-only audit log: a mutating call (or a `channel.open`), who made it as the
 * kernel named the connection's peer, what it was about, and how it ended. `params` are the call's params as
 * the log keeps them: every secret-looking field already replaced by `[redacted]` when the row was written.
 */
export const AuditEntry = z.object({
  /** The row's sequence number (increasing, never reused). */
  id: z.number().int().positive(),
  at: IsoTime,
  /** The OS user the kernel named for the caller's connection (SO_PEERCRED), never the client's claim. */
  user: z.string(),
  uid: z.number().int().nullable(),
  method: z.string(),
  /** The VM the call was about, as far as its params name it (`vm.create` names only the new VM's name). */
  vmId: z.string().nullable(),
  vmName: z.string().nullable(),
  /** The golden image the call was about (`image.*`: the image's name, `vm.create`: the image it boots). */
  image: z.string().nullable(),
  params: z.unknown(),
  ok: z.boolean(),
  error: z.object({ kind: z.string(), message: z.string().nullable() }).nullable(),
});
export type AuditEntry = z.infer<typeof AuditEntry>;

/**
 * `audit.list`: newest first, paged by keyset (time, then id). `vm` matches a VM id or name, `method` a method
 * exactly (`vm.create`) or a family (`vm.*`), `since`/`until` bound the time (inclusive). `cursor` is the
 * `nextCursor` of the previous page, unchanged, with the same filters.
 */
export const AuditListParams = z
  .object({
    user: z.string().min(1).max(128).optional(),
    method: z
      .string()
      .regex(/^[a-z][A-Za-z0-9]*(\.[a-z][A-Za-z0-9]*)*(\.\*)?$/, 'method must be a method name or a family (vm.*)')
      .max(64)
      .optional(),
    vm: z
      .string()
      .regex(/^[A-Za-z0-9._-]{1,128}$/, 'vm must be a VM id or name')
      .optional(),
    since: IsoTime.optional(),
    until: IsoTime.optional(),
    cursor: z.string().min(1).max(256).optional(),
    limit: z.number().int().min(1).max(AUDIT_PAGE_MAX).optional(),
  })
  .strict();
export type AuditListParams = z.infer<typeof AuditListParams>;

export const AuditListResult = z.object({
  entries: z.array(AuditEntry),
  /** Pass it back as `cursor` for the next (older) page; null when this page was the last. */
  nextCursor: z.string().nullable(),
});
export type AuditListResult = z.infer<typeof AuditListResult>;
