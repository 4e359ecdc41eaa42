import { useEffect } from 'react';
import type { AuditEntry } from '../../../../shared/protocol/audit';
import { methods } from '../../../../shared/protocol/methods';
import { useActions } from '../../state/actionsContext';
import { useAuditStore } from '../../state/auditStore';
import { useHostsStore } from '../../state/hostsStore';
import { downloadText } from '../chrome/downloadText';

/** What the audit log records: the mutating methods, `channel.open`, and their families. */
const AUDITED_METHODS = [
  ...Object.values(methods)
    .filter((m) => m.mutating)
    .map((m) => m.method),
  'channel.open',
];
const METHOD_CHOICES = [...new Set(AUDITED_METHODS.map((m) => `${m.split('.')[0]!}.*`)), ...AUDITED_METHODS].sort();

function vmText(e: AuditEntry): string {
  if (e.vmName && e.vmId) return `${e.vmName} (${e.vmId})`;
  return e.vmName ?? e.vmId ?? '';
}

/** A file name for an export: host and the time it was made, no characters a file system minds. */
export function exportFileName(hostName: string, now: Date): string {
  const safe = hostName.replace(/[^A-Za-z0-9._-]+/g, '-') || 'host';
  return `firedeck-audit-${safe}-${now.toISOString().replace(/[:.]/g, '-')}.jsonl`;
}

/** Who did what, when, on which VM or image, and how it ended: a connected host's audit log, paged. */
export function AuditView(): React.JSX.Element {
  const { audit } = useActions();
  const hosts = useHostsStore((s) => s.hosts);
  const statuses = useHostsStore((s) => s.statuses);
  const selectedHostId = useHostsStore((s) => s.selectedHostId);
  const hostId = useAuditStore((s) => s.hostId);
  const filter = useAuditStore((s) => s.filter);
  const entries = useAuditStore((s) => s.entries);
  const nextCursor = useAuditStore((s) => s.nextCursor);
  const loading = useAuditStore((s) => s.loading);
  const error = useAuditStore((s) => s.error);
  const setHost = useAuditStore((s) => s.setHost);
  const setFilter = useAuditStore((s) => s.setFilter);
  const connected = hosts.filter((h) => statuses[h.id]?.state === 'connected');
  const hostName = hosts.find((h) => h.id === hostId)?.name ?? hostId ?? '';

  // The view follows the selected host until the operator picks another; a host that dropped is let go.
  const fallback = connected.find((h) => h.id === selectedHostId)?.id ?? connected[0]?.id ?? null;
  const current = hostId !== null && connected.some((h) => h.id === hostId) ? hostId : fallback;
  useEffect(() => {
    if (current !== hostId) setHost(current);
  }, [current, hostId, setHost]);
  useEffect(() => {
    if (hostId !== null) void audit.load();
  }, [audit, hostId]);

  const exportAll = async (): Promise<void> => {
    const text = await audit.exportJsonLines();
    if (text !== null) downloadText(document, exportFileName(hostName, new Date()), text, 'application/x-ndjson');
  };

  return (
    <section className="audit-view">
      <form
        className="toolbar"
        onSubmit={(e) => {
          e.preventDefault();
          void audit.load();
        }}
      >
        <h2>Audit log</h2>
        {connected.length > 1 ? (
          <select value={hostId ?? ''} onChange={(e) => setHost(e.target.value)} aria-label="Host">
            {connected.map((h) => (
              <option key={h.id} value={h.id}>
                {h.name}
              </option>
            ))}
          </select>
        ) : null}
        <input
          type="search"
          placeholder="user"
          value={filter.user}
          onChange={(e) => setFilter({ user: e.target.value })}
          aria-label="Filter by user"
        />
        <input
          type="search"
          placeholder="method (vm.create, vm.*)"
          list="audit-methods"
          value={filter.method}
          onChange={(e) => setFilter({ method: e.target.value })}
          aria-label="Filter by method"
        />
        <datalist id="audit-methods">
          {METHOD_CHOICES.map((m) => (
            <option key={m} value={m} />
          ))}
        </datalist>
        <input
          type="search"
          placeholder="VM id or name"
          value={filter.vm}
          onChange={(e) => setFilter({ vm: e.target.value })}
          aria-label="Filter by VM"
        />
        <label>
          from{' '}
          <input
            type="datetime-local"
            value={filter.since}
            onChange={(e) => setFilter({ since: e.target.value })}
            aria-label="From time"
          />
        </label>
        <label>
          to{' '}
          <input
            type="datetime-local"
            value={filter.until}
            onChange={(e) => setFilter({ until: e.target.value })}
            aria-label="To time"
          />
        </label>
        <button type="submit" disabled={hostId === null || loading}>
          Apply
        </button>
        <button type="button" disabled={hostId === null || loading} onClick={() => void exportAll()}>
          Export JSON lines
        </button>
        <span className="count" data-testid="audit-count">
          {entries.length} {entries.length === 1 ? 'entry' : 'entries'}
          {nextCursor === null ? '' : ' (more)'}
        </span>
      </form>
      {error ? (
        <p className="error" role="alert" data-testid="audit-error">
          {error.message}
          {error.hint ? <span className="muted"> {error.hint}</span> : null}
        </p>
      ) : null}
      {hostId === null ? (
        <p className="empty">Connect a host to read its audit log.</p>
      ) : entries.length === 0 && !loading ? (
        <p className="empty">No audit entries on {hostName} match.</p>
      ) : (
        <table className="audit-table" data-testid="audit-table">
          <thead>
            <tr>
              <th>Time</th>
              <th>User</th>
              <th>Method</th>
              <th>VM</th>
              <th>Image</th>
              <th>Result</th>
            </tr>
          </thead>
          <tbody>
            {entries.map((e) => (
              <tr key={e.id} className="audit-row" data-testid={`audit-${e.id}`}>
                <td className="mono" title={e.at}>
                  {new Date(e.at).toLocaleString()}
                </td>
                <td data-testid="audit-user">
                  {e.user}
                  {e.uid === null ? null : <span className="muted"> ({e.uid})</span>}
                </td>
                <td className="mono" data-testid="audit-method">
                  {e.method}
                </td>
                <td>{vmText(e)}</td>
                <td>{e.image ?? ''}</td>
                <td>
                  {e.ok ? (
                    <span className="pill audit-ok">ok</span>
                  ) : (
                    <>
                      <span className="pill audit-error">{e.error?.kind ?? 'error'}</span>
                      {e.error?.message ? <span className="muted"> {e.error.message}</span> : null}
                    </>
                  )}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {nextCursor !== null ? (
        <button type="button" disabled={loading} onClick={() => void audit.loadMore()}>
          Load more
        </button>
      ) : null}
    </section>
  );
}
