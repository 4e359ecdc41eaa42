import { useHostsStore } from '../../state/hostsStore';
import { useActions } from '../../state/actionsContext';

/** Trust on first use: the operator compares the fingerprint with the host's own before it is pinned. */
export function TrustHostKeyDialog(): React.JSX.Element | null {
  const pending = useHostsStore((s) => s.pendingTrust);
  const clear = useHostsStore((s) => s.setPendingTrust);
  const { hosts } = useActions();
  if (!pending) return null;
  return (
    <div className="modal-backdrop">
      <div className="modal" role="dialog" aria-modal="true" aria-labelledby="trust-title">
        <h3 id="trust-title">Trust the host key of {pending.hostName}?</h3>
        <p>This is the first connection to this host. Compare the fingerprint with the one the host shows:</p>
        <p className="mono fingerprint" data-testid="trust-fingerprint">
          {pending.keyType} {pending.fingerprint}
        </p>
        <p className="hint">On the host: ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub</p>
        <div className="modal-actions">
          <button type="button" onClick={() => clear(null)}>
            Cancel
          </button>
          <button
            type="button"
            className="primary"
            onClick={() => void hosts.trust(pending.hostId, pending.fingerprint)}
          >
            Trust and connect
          </button>
        </div>
      </div>
    </div>
  );
}
