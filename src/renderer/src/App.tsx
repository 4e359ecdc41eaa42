import { Header } from './features/chrome/Header';
import { Notice } from './features/chrome/Notice';
import { ConfirmDialog } from './features/chrome/ConfirmDialog';
import { Toasts } from './features/chrome/Toasts';
import { HostsView } from './features/hosts/HostsView';
import { FleetView } from './features/fleet/FleetView';
import { VmDetail } from './features/vm/VmDetail';
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
          <VmDetail key={`${view.hostId}/${view.vmId}`} hostId={view.hostId} vmId={view.vmId} />
        ) : null}
      </main>
      <Toasts />
      <ConfirmDialog />
    </div>
  );
}
