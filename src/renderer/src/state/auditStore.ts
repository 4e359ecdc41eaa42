import { create } from 'zustand';
import type { AppError } from '../../../shared/errors';
import type { AuditEntry } from '../../../shared/protocol/audit';

/** The audit view's filter as the operator typed it; empty fields filter nothing. Times are `datetime-local` text. */
export interface AuditFilter {
  user: string;
  method: string;
  vm: string;
  since: string;
  until: string;
}

export const NO_AUDIT_FILTER: AuditFilter = { user: '', method: '', vm: '', since: '', until: '' };

/**
 * The audit view: which host's log, the filter being typed, and the pages loaded for the filter last applied
 * (`audit.list`, newest first). Entries carry only redacted params: nothing here ever holds a secret.
 */
export interface AuditState {
  hostId: string | null;
  filter: AuditFilter;
  /** The filter the loaded entries answer (paging and export continue it, whatever is typed meanwhile). */
  applied: AuditFilter;
  entries: AuditEntry[];
  /** The next page's cursor; null when the loaded pages reach the log's start. */
  nextCursor: string | null;
  loading: boolean;
  error: AppError | null;
  setHost(hostId: string | null): void;
  setFilter(patch: Partial<AuditFilter>): void;
  /** A first page for `applied` replaces whatever was loaded. */
  loaded(applied: AuditFilter, entries: readonly AuditEntry[], nextCursor: string | null): void;
  /** A further page, appended (an entry already loaded is not repeated). */
  appended(entries: readonly AuditEntry[], nextCursor: string | null): void;
  setLoading(loading: boolean): void;
  failed(error: AppError | null): void;
}

export const useAuditStore = create<AuditState>()((set) => ({
  hostId: null,
  filter: NO_AUDIT_FILTER,
  applied: NO_AUDIT_FILTER,
  entries: [],
  nextCursor: null,
  loading: false,
  error: null,
  setHost: (hostId) => set({ hostId, entries: [], nextCursor: null, error: null }),
  setFilter: (patch) => set((s) => ({ filter: { ...s.filter, ...patch } })),
  loaded: (applied, entries, nextCursor) => set({ applied, entries: [...entries], nextCursor, error: null }),
  appended: (entries, nextCursor) =>
    set((s) => {
      const known = new Set(s.entries.map((e) => e.id));
      return { entries: [...s.entries, ...entries.filter((e) => !known.has(e.id))], nextCursor, error: null };
    }),
  setLoading: (loading) => set({ loading }),
  failed: (error) => set({ error }),
}));
