import { z } from 'zod';
import type { Statement } from 'better-sqlite3';
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

/** Copies params with every secret-looking field replaced, so the audit log never holds a secret. */
export function redactSecrets(value: unknown, depth = 0): unknown {
  if (depth > 8) return '[nested]';
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
