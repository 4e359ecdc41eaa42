import { Header } from './features/chrome/Header';
import { Notice } from './features/chrome/Notice';
import { ConfirmDialog } from './features/chrome/ConfirmDialog';
import { Toasts } from './features/chrome/Toasts';
import { HostsView } from './features/hosts/HostsView';
import { FleetView } from './features/fleet/FleetView';
import { VmDetail } from './features/vm/VmDetail';
import { UsersView } from './features/auth/UsersView';
import { SessionView } from './features/auth/SessionView';
import { HistoryView } from './features/auth/HistoryView';
import { AuditView } from './features/audit/AuditView';
import { ImagesView } from './features/images/ImagesView';
import { useUiStore } from './state/uiStore';

export function App(): React.JSX.Element {
  const view = useUiStore((s) => s.view);
  return (
    <div className="app">
      <Header />
      <Notice />
      <main className="app-main">
        {view.name === 'hosts' ? <HostsView /> : null}
        {view.name === 'fleet' ? <FleetView /> : null}
        {view.name === 'vm' ? (
          <VmDetail
            key={`${view.hostId}/${view.vmId}/${view.tab ?? ''}`}
            hostId={view.hostId}
            vmId={view.vmId}
            tab={view.tab}
          />
        ) : null}
        {view.name === 'users' ? <UsersView /> : null}
        {view.name === 'history' ? <HistoryView /> : null}
        {view.name === 'audit' ? <AuditView /> : null}
        {view.name === 'images' ? <ImagesView /> : null}
        {view.name === 'auth' ? (
          <SessionView key={`${view.hostId}/${view.sessionId}`} hostId={view.hostId} sessionId={view.sessionId} />
        ) : null}
      </main>
      <Toasts />
      <ConfirmDialog />
    </div>
  );
}
