import { useState } from 'react';
import { useHostsStore } from '../../state/hostsStore';
import { useActions } from '../../state/actionsContext';
import { confirmAction } from '../../state/confirmStore';
import { AddHostForm } from './AddHostForm';
import { TrustHostKeyDialog } from './TrustHostKeyDialog';

export function HostsView(): React.JSX.Element {
  const hosts = useHostsStore((s) => s.hosts);
  const statuses = useHostsStore((s) => s.statuses);
  const selected = useHostsStore((s) => s.selectedHostId);
  const select = useHostsStore((s) => s.select);
  const { hosts: actions } = useActions();
  const [editingId, setEditingId] = useState<string | null>(null);
  const editing = hosts.find((h) => h.id === editingId);
  return (
    <section className="hosts-view">
      <div className="toolbar">
        <h2>Hosts</h2>
        <button
          type="button"
          onClick={() => void actions.connectAll()}
          disabled={hosts.length === 0}
          title="Connect every host at once; a host that fails does not hold up the others"
        >
          Connect all
        </button>
      </div>
      <table className="hosts-table">
        <thead>
          <tr>
            <th>Name</th>
            <th>Address</th>
            <th>Host key</th>
            <th>Status</th>
            <th aria-label="Actions" />
          </tr>
        </thead>
        <tbody>
          {hosts.map((h) => {
            const status = statuses[h.id];
            const state = status?.state ?? 'disconnected';
            const busy = state === 'connecting' || state === 'reconnecting';
            return (
              <tr
                key={h.id}
                className={h.id === selected ? 'selected' : undefined}
                onClick={() => select(h.id)}
                data-testid={`host-row-${h.name}`}
              >
                <td>{h.name}</td>
                <td>{h.kind === 'local' ? 'this machine' : `${h.user}@${h.address}:${h.port}`}</td>
                <td className="mono">{h.kind === 'local' ? '—' : (h.hostKeyFingerprint ?? 'not trusted yet')}</td>
                <td>
                  <span className={`pill pill-${state}`}>{state}</span>
                  {status?.error && state !== 'connected' ? (
                    <div className="row-error" data-testid="host-error">
                      {status.error.message}
                      {status.error.hint ? <div className="hint">{status.error.hint}</div> : null}
                    </div>
                  ) : null}
                </td>
                <td className="actions">
                  {state === 'connected' || busy ? (
                    <button type="button" onClick={() => void actions.disconnect(h.id)}>
                      Disconnect
                    </button>
                  ) : (
                    <button type="button" onClick={() => void actions.connect(h.id)}>
                      Connect
                    </button>
                  )}
                  {h.kind === 'ssh' ? (
                    <button type="button" onClick={() => setEditingId(h.id)}>
                      Edit
                    </button>
                  ) : null}
                  {h.kind === 'ssh' ? (
                    <button
                      type="button"
                      className="danger"
                      onClick={() =>
                        void confirmAction({
                          title: `Remove host ${h.name}?`,
                          detail: 'Its pinned host key is forgotten too; its VMs keep running.',
                          confirmLabel: 'Remove',
                          danger: true,
                        }).then((ok) => (ok ? actions.remove(h.id) : undefined))
                      }
                    >
                      Remove
                    </button>
                  ) : null}
                </td>
              </tr>
            );
          })}
          {hosts.length === 0 ? (
            <tr>
              <td colSpan={5} className="empty">
                No hosts yet. Add one below.
              </td>
            </tr>
          ) : null}
        </tbody>
      </table>
      {editing ? <AddHostForm key={editing.id} editing={editing} onDone={() => setEditingId(null)} /> : <AddHostForm />}
      <TrustHostKeyDialog />
    </section>
  );
}
