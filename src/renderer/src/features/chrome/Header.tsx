import { useHostsStore } from '../../state/hostsStore';
import { useUiStore } from '../../state/uiStore';
import { connectionText } from './connectionText';

/** Always visible: navigation, and which host the console talks to and how that link is. */
export function Header(): React.JSX.Element {
  const host = useHostsStore((s) => s.hosts.find((h) => h.id === s.selectedHostId));
  const status = useHostsStore((s) => (s.selectedHostId ? s.statuses[s.selectedHostId] : undefined));
  const view = useUiStore((s) => s.view.name);
  const show = useUiStore((s) => s.show);
  const theme = useUiStore((s) => s.theme);
  const setTheme = useUiStore((s) => s.setTheme);
  const state = status?.state ?? 'disconnected';
  return (
    <header className="app-header">
      <span className="brand">Firedeck</span>
      <nav>
        <button
          type="button"
          className={view === 'hosts' ? 'nav active' : 'nav'}
          onClick={() => show({ name: 'hosts' })}
          title="Alt+1"
        >
          Hosts
        </button>
        <button
          type="button"
          className={view === 'fleet' || view === 'vm' ? 'nav active' : 'nav'}
          onClick={() => show({ name: 'fleet' })}
          title="Alt+2"
        >
          Fleet
        </button>
        <button
          type="button"
          className={view === 'users' || view === 'auth' ? 'nav active' : 'nav'}
          onClick={() => show({ name: 'users' })}
          title="Alt+3: the users this host serves and their CLIs' logins"
        >
          Users
        </button>
        <button
          type="button"
          className={view === 'history' ? 'nav active' : 'nav'}
          onClick={() => show({ name: 'history' })}
          title="Alt+4: every login session"
        >
          Sessions
        </button>
        <button
          type="button"
          className={view === 'audit' ? 'nav active' : 'nav'}
          onClick={() => show({ name: 'audit' })}
          title="Alt+5: who did what, when, and how it ended"
        >
          Audit
        </button>
        <button
          type="button"
          className={view === 'images' ? 'nav active' : 'nav'}
          onClick={() => show({ name: 'images' })}
          title="Alt+6: golden images, their builds and versions"
        >
          Images
        </button>
      </nav>
      <span className={`status status-${state}`} data-testid="connection-status" role="status" aria-live="polite">
        <span className="dot" aria-hidden="true" />
        {connectionText(host, status)}
      </span>
      <span className="spacer" />
      <select value={theme} onChange={(e) => setTheme(e.target.value as typeof theme)} aria-label="Theme" title="Alt+T">
        <option value="system">system theme</option>
        <option value="light">light</option>
        <option value="dark">dark</option>
      </select>
    </header>
  );
}
