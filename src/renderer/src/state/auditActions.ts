import { FiredeckError, toAppError } from '../../../shared/errors';
import { AUDIT_PAGE_MAX, type AuditEntry, type AuditListParams } from '../../../shared/protocol/audit';
import type { AppClient } from '../api/appClient';
import { daemonCall } from '../api/daemonCall';
import { useAuditStore, type AuditFilter } from './auditStore';

/** How many entries one page of the audit view brings. */
export const AUDIT_VIEW_PAGE = 100;

export interface AuditActions {
  /** The newest page of the chosen host's log for the filter as typed (opening the view, Apply). */
  load(): Promise<void>;
  /** The next older page for the filter last applied. */
  loadMore(): Promise<void>;
  /**
   * Every entry of the filter last applied, as JSON lines: the pages loaded, then the rest fetched (and kept);
   * null when a page failed (the store says why) or another load overtook it.
   */
  exportJsonLines(): Promise<string | null>;
}

/** The filter as `audit.list` params: empty fields left out, local times as ISO instants. */
export function auditParams(filter: AuditFilter): Omit<AuditListParams, 'cursor' | 'limit'> {
  const out: Omit<AuditListParams, 'cursor' | 'limit'> = {};
  const text = (v: string): string | undefined => (v.trim() === '' ? undefined : v.trim());
  const user = text(filter.user);
  const method = text(filter.method);
  const vm = text(filter.vm);
  if (user !== undefined) out.user = user;
  if (method !== undefined) out.method = method;
  if (vm !== undefined) out.vm = vm;
  for (const key of ['since', 'until'] as const) {
    const value = text(filter[key]);
    if (value === undefined) continue;
    const ms = Date.parse(value);
    if (Number.isNaN(ms)) {
      throw new FiredeckError('invalid_params', `"${value}" is not a time`, { hint: 'Pick a date and time.' });
    }
    out[key] = new Date(ms).toISOString();
  }
  return out;
}

export function jsonLines(entries: readonly AuditEntry[]): string {
  return entries.map((e) => JSON.stringify(e) + '\n').join('');
}

export function createAuditActions(client: AppClient): AuditActions {
  const store = useAuditStore.getState;
  // Answers to an older load (another host, another filter) are dropped when they arrive late.
  let generation = 0;

  const page = (hostId: string, filter: AuditFilter, cursor: string | null, limit: number) =>
    daemonCall(client, hostId, 'audit.list', { ...auditParams(filter), limit, ...(cursor ? { cursor } : {}) });

  const more = async (limit: number): Promise<boolean> => {
    const { hostId, applied, nextCursor } = store();
    if (hostId === null || nextCursor === null) return false;
    const mine = generation;
    const next = await page(hostId, applied, nextCursor, limit);
    if (mine !== generation) return false;
    store().appended(next.entries, next.nextCursor);
    return next.nextCursor !== null;
  };

  const guarded = async <T>(fn: () => Promise<T>, fallback: T): Promise<T> => {
    store().setLoading(true);
    try {
      return await fn();
    } catch (err) {
      store().failed(toAppError(err));
      return fallback;
    } finally {
      store().setLoading(false);
    }
  };

  return {
    load: () =>
      guarded(async () => {
        const { hostId, filter } = store();
        const mine = ++generation;
        if (hostId === null) return;
        const first = await page(hostId, filter, null, AUDIT_VIEW_PAGE);
        if (mine === generation) store().loaded(filter, first.entries, first.nextCursor);
      }, undefined),
    loadMore: () =>
      guarded(async () => {
        await more(AUDIT_VIEW_PAGE);
      }, undefined),
    exportJsonLines: () =>
      guarded<string | null>(async () => {
        const mine = generation;
        let again = true;
        while (again) again = await more(AUDIT_PAGE_MAX);
        return mine === generation ? jsonLines(store().entries) : null;
      }, null),
  };
}
