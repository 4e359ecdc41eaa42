import { useMemo, useState } from 'react';
import { AuthSessionState, isAuthSessionLive } from '../../../../shared/protocol/auth';
import { useActions } from '../../state/actionsContext';
import { useAuthStore } from '../../state/authStore';
import { useHostsStore } from '../../state/hostsStore';
import { useUiStore } from '../../state/uiStore';
import { useNow } from '../fleet/useNow';
import {
  NO_FILTER,
  PROVIDER_ORDER,
  STATE_TEXT,
  filterHistory,
  formatMs,
  providerLabel,
  stateSpans,
  totalMs,
  type HistoryFilter,
} from './authModel';

/** Every login session of the connected hosts: who ran it, for whom, how long each step took, how it ended. */
export function HistoryView(): React.JSX.Element {
  const { auth } = useActions();
  const sessions = useAuthStore((s) => s.sessions);
  const more = useAuthStore((s) => s.more);
  const hosts = useHostsStore((s) => s.hosts);
  const show = useUiStore((s) => s.show);
  const now = useNow(1000);
  const [filter, setFilter] = useState<HistoryFilter>(NO_FILTER);
  const all = useMemo(() => Object.values(sessions), [sessions]);
  const users = useMemo(() => [...new Set(all.map((r) => r.session.user))].sort(), [all]);
  const rows = useMemo(() => filterHistory(all, filter), [all, filter]);
  const hostName = (id: string): string => hosts.find((h) => h.id === id)?.name ?? id;
  const paged = Object.entries(more).filter(([, m]) => m);
  const set = (patch: Partial<HistoryFilter>): void => setFilter((f) => ({ ...f, ...patch }));

  return (
    <section className="history-view">
      <div className="toolbar">
        <h2>Sessions</h2>
        <input
          type="search"
          placeholder="Search user, provider, who ran it, CLI VM, error…"
          value={filter.text}
          onChange={(e) => set({ text: e.target.value })}
          aria-label="Search sessions"
        />
        <select value={filter.user} onChange={(e) => set({ user: e.target.value })} aria-label="User">
          <option value="">all users</option>
          {users.map((u) => (
            <option key={u} value={u}>
              {u}
            </option>
          ))}
        </select>
        <select
          value={filter.provider}
          onChange={(e) => set({ provider: e.target.value as HistoryFilter['provider'] })}
          aria-label="Provider"
        >
          <option value="">all providers</option>
          {PROVIDER_ORDER.map((p) => (
            <option key={p} value={p}>
              {providerLabel(p)}
            </option>
          ))}
        </select>
        <select
          value={filter.state}
          onChange={(e) => set({ state: e.target.value as HistoryFilter['state'] })}
          aria-label="State"
        >
          <option value="">all states</option>
          {AuthSessionState.options.map((st) => (
            <option key={st} value={st}>
              {STATE_TEXT[st]}
            </option>
          ))}
        </select>
        <span className="count">
          {rows.length} of {all.length}
        </span>
      </div>
      {all.length === 0 ? (
        <p className="empty">No login sessions on the connected hosts yet.</p>
      ) : (
        <table className="history-table" data-testid="history-table">
          <thead>
            <tr>
              <th>Started</th>
              <th>Host</th>
              <th>User</th>
              <th>Provider</th>
              <th>Run by</th>
              <th>Steps (time each took)</th>
              <th>Total</th>
              <th>Ended</th>
            </tr>
          </thead>
          <tbody>
            {rows.map(({ hostId, session: s }) => (
              <tr
                key={`${hostId}/${s.id}`}
                className="history-row"
                data-testid={`history-${s.id}`}
                onClick={() => show({ name: 'auth', hostId, sessionId: s.id })}
              >
                <td className="mono">{new Date(s.createdAt).toLocaleString()}</td>
                <td>{hostName(hostId)}</td>
                <td>{s.user}</td>
                <td>{providerLabel(s.provider)}</td>
                <td>{s.startedBy}</td>
                <td className="muted">
                  {stateSpans(s, now)
                    .filter((sp) => sp.ms !== null)
                    .map((sp) => `${sp.state} ${formatMs(sp.ms)}`)
                    .join(' · ')}
                </td>
                <td>{formatMs(totalMs(s, now))}</td>
                <td>
                  <span className={`pill auth-${s.state}`}>{STATE_TEXT[s.state]}</span>
                  {isAuthSessionLive(s.state) ? null : s.error ? (
                    <span className="muted"> {s.error.message}</span>
                  ) : s.result ? (
                    <span className="muted"> {s.result.cliVmName}</span>
                  ) : null}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {paged.map(([hostId]) => (
        <button key={hostId} type="button" onClick={() => void auth.loadOlder(hostId)}>
          Load older sessions of {hostName(hostId)}
        </button>
      ))}
    </section>
  );
}
