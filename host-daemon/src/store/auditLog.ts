import { z } from 'zod';
import type { Statement } from 'better-sqlite3';
import { FiredeckError } from '../../../src/shared/errors';
import {
  AUDIT_PAGE_DEFAULT,
  type AuditEntry as AuditListEntry,
  type AuditListParams,
  type AuditListResult,
} from '../../../src/shared/protocol/audit';
import { statementCache, type Db } from './db';

export interface AuditEntry {
  seq: number;
  at: string;
  user: string;
  uid: number | null;
  method: string;
  params: unknown;
  ok: boolean;
  errorKind: string | null;
  errorMessage: string | null;
}

const AuditRow = z.object({
  seq: z.number().int(),
  at: z.string(),
  user: z.string(),
  uid: z.number().int().nullable(),
  method: z.string(),
  params: z.string(),
  ok: z.number().int(),
  error_kind: z.string().nullable(),
  error_message: z.string().nullable(),
});

const SECRET_KEY = /pass(word)?|secret|token|credential|private|^key$|^code$|authorization/i;

/** `scheme://user:password@` in any string (a proxy URL, say): the user and password go, the host stays. */
const URL_USERINFO = /\b([a-z][a-z0-9+.-]*:\/\/)[^\s/?#]*@/gi;

/**
 * Copies params with every secret-looking field replaced, and any URL's user and password cut from every string,
 * so the audit log never holds a secret.
 */
export function redactSecrets(value: unknown, depth = 0): unknown {
  if (depth > 8) return '[nested]';
  if (typeof value === 'string') return value.replace(URL_USERINFO, '$1***@');
  if (Array.isArray(value)) return value.map((v) => redactSecrets(v, depth + 1));
  if (typeof value === 'object' && value !== null) {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value))
      out[k] = SECRET_KEY.test(k) ? '[redacted]' : redactSecrets(v, depth + 1);
    return out;
  }
  return value;
}

/** The append-only record of every mutating call (the table refuses UPDATE and DELETE). */
export class AuditLog {
  private readonly q: (sql: string) => Statement;

  constructor(private readonly db: Db) {
    this.q = statementCache(db);
  }

  append(entry: Omit<AuditEntry, 'seq' | 'at'> & { at?: string }): number {
    const info = this.q(
      `INSERT INTO audit_events (at, user, uid, method, params, ok, error_kind, error_message)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
    ).run(
      entry.at ?? new Date().toISOString(),
      entry.user,
      entry.uid,
      entry.method,
      JSON.stringify(redactSecrets(entry.params) ?? null),
      entry.ok ? 1 : 0,
      entry.errorKind,
      entry.errorMessage,
    );
    return Number(info.lastInsertRowid);
  }

  /**
   * One page of `audit.list`: newest first by (time, seq), filtered, the VM and image each row is about read from
   * its (already redacted) params and, for a VM's name, from the VM table.
   */
  list(params: AuditListParams): AuditListResult {
    const limit = params.limit ?? AUDIT_PAGE_DEFAULT;
    const where: string[] = [];
    const args: Record<string, string | number> = { limit: limit + 1 };
    if (params.user !== undefined) {
      where.push('user = @user');
      args.user = params.user;
    }
    if (params.method !== undefined) {
      if (params.method.endsWith('.*')) {
        // A family: `vm.*` is every method whose name starts with `vm.` (no LIKE: `_` and `%` stay literal).
        where.push('substr(method, 1, length(@family)) = @family');
        args.family = params.method.slice(0, -1);
      } else {
        where.push('method = @method');
        args.method = params.method;
      }
    }
    if (params.vm !== undefined) {
      where.push('(vm_id = @vm OR vm_name = @vm)');
      args.vm = params.vm;
    }
    if (params.since !== undefined) {
      where.push('at >= @since');
      args.since = canonicalTime(params.since);
    }
    if (params.until !== undefined) {
      where.push('at <= @until');
      args.until = canonicalTime(params.until);
    }
    if (params.cursor !== undefined) {
      const cursor = decodeCursor(params.cursor);
      where.push('(at < @cursorAt OR (at = @cursorAt AND seq < @cursorSeq))');
      args.cursorAt = cursor.at;
      args.cursorSeq = cursor.seq;
    }
    const rows = this.q(
      `${SUBJECTS} SELECT * FROM subjects ${where.length ? `WHERE ${where.join(' AND ')}` : ''}
         ORDER BY at DESC, seq DESC LIMIT @limit`,
    ).all(args);
    const entries = rows.slice(0, limit).map((raw) => listEntry(SubjectRow.parse(raw)));
    const last = entries.at(-1);
    return {
      entries,
      nextCursor: rows.length > limit && last ? encodeCursor({ at: last.at, seq: last.id }) : null,
    };
  }

  recent(limit = 100): AuditEntry[] {
    const rows = this.q('SELECT * FROM audit_events ORDER BY seq DESC LIMIT ?').all(limit);
    return rows.map((raw) => {
      const r = AuditRow.parse(raw);
      return {
        seq: r.seq,
        at: r.at,
        user: r.user,
        uid: r.uid,
        method: r.method,
        params: JSON.parse(r.params) as unknown,
        ok: r.ok === 1,
        errorKind: r.error_kind,
        errorMessage: r.error_message,
      };
    });
  }
}

/**
 * The audit rows with the VM each is about: `vm.*` name it by `id` (`vm.create` by the new VM's name; its id is
 * the newest VM of that name created by the time the call was recorded), `channel.open` by `vmId` or `vm`.
 */
const SUBJECTS = `
  WITH refs AS (
    SELECT a.*,
      CASE
        WHEN a.method = 'channel.open' THEN json_extract(a.params, '$.vmId')
        WHEN a.method = 'vm.create' AND a.ok = 1 THEN (
          SELECT v.id FROM vms v WHERE v.name = json_extract(a.params, '$.name') AND v.created_at <= a.at
           ORDER BY v.created_at DESC LIMIT 1)
        WHEN substr(a.method, 1, 3) = 'vm.' THEN json_extract(a.params, '$.id')
      END AS ref_id
    FROM audit_events a
  ),
  subjects AS (
    SELECT r.*, r.ref_id AS vm_id,
      COALESCE(
        (SELECT v.name FROM vms v WHERE v.id = r.ref_id),
        CASE
          WHEN r.method = 'vm.create' THEN json_extract(r.params, '$.name')
          WHEN r.method = 'channel.open' THEN json_extract(r.params, '$.vm')
        END
      ) AS vm_name
    FROM refs r
  )`;

const SubjectRow = AuditRow.extend({ vm_id: z.string().nullable(), vm_name: z.string().nullable() });

function listEntry(r: z.infer<typeof SubjectRow>): AuditListEntry {
  const params = JSON.parse(r.params) as unknown;
  return {
    id: r.seq,
    at: r.at,
    user: r.user,
    uid: r.uid,
    method: r.method,
    vmId: r.vm_id,
    vmName: r.vm_name,
    image: imageOf(r.method, params),
    params,
    ok: r.ok === 1,
    error: r.ok === 1 ? null : { kind: r.error_kind ?? 'internal', message: r.error_message },
  };
}

/** The golden image a call was about: `image.build` names its recipe, other `image.*` and `vm.create` the image. */
function imageOf(method: string, params: unknown): string | null {
  if (typeof params !== 'object' || params === null) return null;
  const p = params as Record<string, unknown>;
  const value =
    method === 'image.build' || method === 'image.build.start'
      ? p.recipe
      : method.startsWith('image.')
        ? p.name
        : method === 'vm.create'
          ? p.image
          : undefined;
  if (typeof value !== 'string') return null;
  return method === 'image.promote' && typeof p.version === 'string' ? `${value}@${p.version}` : value;
}

/** The log's own form of a time (`toISOString`), so that text order is time order whatever offset was given. */
function canonicalTime(iso: string): string {
  return new Date(iso).toISOString();
}

const Cursor = z.tuple([z.iso.datetime(), z.number().int().positive()]);

function encodeCursor(c: { at: string; seq: number }): string {
  return Buffer.from(JSON.stringify([c.at, c.seq])).toString('base64url');
}

function decodeCursor(text: string): { at: string; seq: number } {
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(text, 'base64url').toString('utf8'));
  } catch {
    parsed = undefined;
  }
  const ok = Cursor.safeParse(parsed);
  if (!ok.success) {
    throw new FiredeckError('invalid_params', 'Not an audit.list cursor', {
      hint: "Pass the previous page's nextCursor unchanged, or no cursor for the newest entries.",
    });
  }
  return { at: ok.data[0], seq: ok.data[1] };
}
