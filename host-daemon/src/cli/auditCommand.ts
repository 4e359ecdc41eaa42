import { parseArgs } from 'node:util';
import { FiredeckError } from '../../../src/shared/errors';
import {
  AUDIT_PAGE_MAX,
  AuditListParams,
  type AuditEntry,
  type AuditListResult,
  type AuditListParams as AuditFilter,
} from '../../../src/shared/protocol/audit';
import type { DaemonClient } from './daemonClient';
import { textTable } from './textTable';

export const AUDIT_USAGE = `usage: firedeckd audit [--user USER] [--method METHOD] [--vm VM] [--since T] [--until T]
                      [--limit N | --all] [--json]

The daemon's audit log, newest first: every mutating call and channel.open, with the OS user the kernel named
for the caller, the VM or image it was about, and how it ended. Secret-looking params were redacted when the
row was written.

  --method M    a method (vm.create) or a family (vm.*)
  --vm V        a VM id or name
  --since T     an ISO time (2026-12-03T18:00:00Z) or an age: 30m, 2h, 7d (--until likewise)
  --limit N     at most N entries (default 100); --all: every matching entry
  --json        one JSON object per line (JSON lines)
`;

/** What `firedeckd audit …` asks for: the filter, how many entries at most (null: all), and the output form. */
export interface AuditQuery {
  filter: Omit<AuditFilter, 'cursor' | 'limit'>;
  max: number | null;
  json: boolean;
}

const AGE = /^(\d{1,6})([smhd])$/;
const UNIT_MS = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;

/** An ISO time as given, or an age (`2h`) as the ISO time that long before `now`. */
function timeArg(flag: string, value: string, now: Date): string {
  const age = AGE.exec(value);
  if (age) return new Date(now.getTime() - Number(age[1]) * UNIT_MS[age[2] as keyof typeof UNIT_MS]).toISOString();
  if (!Number.isNaN(Date.parse(value)) && /^\d{4}-\d\d-\d\dT/.test(value)) return value;
  throw new FiredeckError('invalid_params', `${flag} must be an ISO time or an age such as 30m, 2h, 7d`, {
    hint: AUDIT_USAGE,
  });
}

/** Parses the command's argv (everything after `audit`); bad input is `invalid_params` with the usage as hint. */
export function parseAuditArgs(args: string[], now = new Date()): AuditQuery | 'help' {
  let parsed: ReturnType<typeof parse>;
  try {
    parsed = parse(args);
  } catch (err) {
    throw new FiredeckError('invalid_params', `audit: ${(err as Error).message}`, { hint: AUDIT_USAGE });
  }
  const { values, positionals } = parsed;
  if (values.help || positionals[0] === 'help') return 'help';
  if (positionals.length > 0) {
    throw new FiredeckError('invalid_params', `audit: unexpected argument ${positionals[0]}`, { hint: AUDIT_USAGE });
  }
  if (values.all && values.limit !== undefined) {
    throw new FiredeckError('invalid_params', 'audit: give --limit or --all, not both', { hint: AUDIT_USAGE });
  }
  const limit = values.limit === undefined ? 100 : Number(values.limit);
  if (!(Number.isInteger(limit) && limit > 0)) {
    throw new FiredeckError('invalid_params', '--limit must be a positive whole number', { hint: AUDIT_USAGE });
  }
  const candidate = {
    ...(values.user !== undefined ? { user: values.user } : {}),
    ...(values.method !== undefined ? { method: values.method } : {}),
    ...(values.vm !== undefined ? { vm: values.vm } : {}),
    ...(values.since !== undefined ? { since: timeArg('--since', values.since, now) } : {}),
    ...(values.until !== undefined ? { until: timeArg('--until', values.until, now) } : {}),
  };
  // The daemon checks again; checking here says which flag is wrong before connecting.
  const checked = AuditListParams.safeParse(candidate);
  if (!checked.success) {
    const why = checked.error.issues.map((i) => `--${i.path.join('.')}: ${i.message}`).join('; ');
    throw new FiredeckError('invalid_params', `audit: ${why}`, { hint: AUDIT_USAGE });
  }
  return { filter: candidate, max: values.all ? null : limit, json: values.json === true };
}

function parse(args: string[]) {
  return parseArgs({
    args,
    options: {
      user: { type: 'string' },
      method: { type: 'string' },
      vm: { type: 'string' },
      since: { type: 'string' },
      until: { type: 'string' },
      limit: { type: 'string' },
      all: { type: 'boolean' },
      json: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
    allowPositionals: true,
  });
}

/** The entries as the operator reads them: one row each, the VM by name and id, the error's kind on failure. */
export function auditTable(entries: readonly AuditEntry[]): string {
  const rows = [['TIME', 'USER', 'METHOD', 'VM', 'IMAGE', 'RESULT']];
  for (const e of entries) {
    const vm = e.vmName && e.vmId ? `${e.vmName} (${e.vmId})` : (e.vmName ?? e.vmId ?? '-');
    rows.push([
      e.at,
      e.uid === null ? e.user : `${e.user} (${e.uid})`,
      e.method,
      vm,
      e.image ?? '-',
      e.ok ? 'ok' : `error: ${e.error?.kind ?? 'internal'}`,
    ]);
  }
  return textTable(rows);
}

/** One entry per line, as `--json` prints and the app exports. */
export function auditJsonLines(entries: readonly AuditEntry[]): string {
  return entries.map((e) => JSON.stringify(e) + '\n').join('');
}

/** `firedeckd audit …`, its argv parsed: pages through `audit.list` until the limit or the log's end. */
export async function auditCommand(
  client: DaemonClient,
  query: AuditQuery,
  out: NodeJS.WritableStream,
): Promise<number> {
  const entries: AuditEntry[] = [];
  let cursor: string | null = null;
  do {
    const want: number = query.max === null ? AUDIT_PAGE_MAX : Math.min(AUDIT_PAGE_MAX, query.max - entries.length);
    const page: AuditListResult = await client.call('audit.list', {
      ...query.filter,
      limit: want,
      ...(cursor ? { cursor } : {}),
    });
    entries.push(...page.entries);
    // JSON lines go out page by page: `--all` on a long log starts printing at once.
    if (query.json) out.write(auditJsonLines(page.entries));
    cursor = page.nextCursor;
  } while (cursor !== null && (query.max === null || entries.length < query.max));
  if (!query.json) out.write(entries.length === 0 ? 'No audit entries match.\n' : auditTable(entries));
  return 0;
}
