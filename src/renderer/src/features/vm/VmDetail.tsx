import { lazy, Suspense, useState } from 'react';
import type { DriverName } from '../../../../shared/protocol/daemon';
import { useFleetStore, vmKey } from '../../state/fleetStore';
import { useHostsStore } from '../../state/hostsStore';
import { useUiStore, type VmTab } from '../../state/uiStore';
import { formatUptime, hostUnreachableNote, uptimeSeconds } from '../fleet/fleetRows';
import { Sparkline } from '../fleet/Sparkline';
import { usageFigures } from '../fleet/usageFigures';
import { useNow } from '../fleet/useNow';
import { VmActionButtons } from '../fleet/VmActionButtons';
import { ConsoleLog } from './ConsoleLog';
import { UnresponsivePill } from './UnresponsivePill';

// noVNC and xterm.js are large: they load when their tab first opens.
const DesktopView = lazy(() => import('../desktop/DesktopView').then((m) => ({ default: m.DesktopView })));
const TerminalTabs = lazy(() => import('../terminal/TerminalTabs').then((m) => ({ default: m.TerminalTabs })));

type Tab = VmTab;

export function VmDetail(props: { hostId: string; vmId: string; tab?: Tab | undefined }): React.JSX.Element {
  const row = useFleetStore((s) => s.vms[vmKey(props.hostId, props.vmId)]);
  const events = useFleetStore((s) => s.events[vmKey(props.hostId, props.vmId)]);
  const hostName = useHostsStore((s) => s.hosts.find((h) => h.id === props.hostId)?.name ?? props.hostId);
  const hostStatus = useHostsStore((s) => s.statuses[props.hostId]);
  const show = useUiStore((s) => s.show);
  const now = useNow(1000);
  const [tab, setTab] = useState<Tab>(props.tab ?? 'console');
  // Shells stay open (with their scrollback) while the operator looks at another tab of the same VM.
  const [terminalOpened, setTerminalOpened] = useState(props.tab === 'terminal');
  const openTab = (t: Tab): void => {
    setTab(t);
    if (t === 'terminal') setTerminalOpened(true);
  };

  if (!row) {
    return (
      <section className="vm-detail">
        <button type="button" className="link" onClick={() => show({ name: 'fleet' })}>
          ← Fleet
        </button>
        <p className="empty">This VM is gone (destroyed, or its host is not connected).</p>
      </section>
    );
  }
  const vm = row.vm;
  const unreachable = hostUnreachableNote(hostStatus);
  const running = vm.state === 'running' || vm.state === 'booting';
  const tabs: Tab[] = ['console', ...(vm.kind === 'cli' ? (['terminal'] as const) : (['desktop'] as const)), 'events'];

  return (
    <section className="vm-detail">
      <div className="vm-head">
        <button type="button" className="link" onClick={() => show({ name: 'fleet' })}>
          ← Fleet
        </button>
        <h2 data-testid="vm-title">{vm.name}</h2>
        <span className={`pill vm-${vm.state}`} data-testid="vm-detail-state">
          {vm.state}
        </span>
        <UnresponsivePill vm={vm} testId="vm-detail-unresponsive" />
        <span className="muted">
          {vm.kind} VM of {vm.owner} on {hostName} · {vm.address ?? 'no address'} · up{' '}
          {formatUptime(uptimeSeconds(row, now))} · {vm.vcpus} vCPU · {vm.memoryMib} MiB · ready:{' '}
          {vm.ready.join(', ') || '—'}
        </span>
        {unreachable ? (
          <span className="row-error" data-testid="vm-host-unreachable">
            {hostName}: {unreachable}
          </span>
        ) : null}
        <span className="spacer" />
        <span className="vm-actions" data-testid="vm-actions">
          <VmActionButtons hostId={props.hostId} hostName={hostName} vm={vm} withKill unreachable={unreachable} />
        </span>
      </div>
      {vm.lastError ? <div className="row-error">Last error: {vm.lastError}</div> : null}
      {running || vm.state === 'stopping' ? <VmUsage hostId={props.hostId} vmId={vm.id} driver={vm.driver} /> : null}
      <div className="tabs" role="tablist">
        {tabs.map((t) => (
          <button
            key={t}
            type="button"
            role="tab"
            aria-selected={tab === t}
            className={tab === t ? 'tab active' : 'tab'}
            onClick={() => openTab(t)}
          >
            {t}
          </button>
        ))}
      </div>
      <div className="vm-tab-body">
        {tab === 'console' ? (
          <ConsoleLog hostId={props.hostId} vmId={vm.id} vmName={vm.name} live={running || vm.state === 'stopping'} />
        ) : null}
        <Suspense fallback={<div className="empty">Loading…</div>}>
          {terminalOpened && vm.kind === 'cli' ? (
            <TerminalTabs
              hostId={props.hostId}
              vmId={vm.id}
              live={vm.state === 'running'}
              visible={tab === 'terminal'}
            />
          ) : null}
          {tab === 'desktop' ? <DesktopView hostId={props.hostId} vmId={vm.id} live={vm.state === 'running'} /> : null}
        </Suspense>
        {tab === 'events' ? (
          <ul className="event-list" data-testid="vm-events">
            {(events ?? []).map((e, i) => (
              <li key={i}>
                <span className="mono muted">{new Date(e.at).toLocaleTimeString()}</span> {e.text}
              </li>
            ))}
            {(events ?? []).length === 0 ? <li className="muted">No events since the app connected.</li> : null}
          </ul>
        ) : null}
      </div>
    </section>
  );
}

/**
 * CPU and memory of a live VM as the daemon samples them (the same history as the fleet's sparklines): CPU as a
 * share of its vCPUs, and memory as two figures, the guest's and its hypervisor process's on the host.
 */
export function VmUsage(props: { hostId: string; vmId: string; driver: DriverName }): React.JSX.Element {
  const history = useFleetStore((s) => s.stats[vmKey(props.hostId, props.vmId)]);
  if (!history) {
    return <div className="vm-usage muted">Waiting for the first CPU and memory sample…</div>;
  }
  const rss = history.hypervisorRssBytes;
  const figures = usageFigures(history.latest, props.driver);
  return (
    <div className="vm-usage" data-testid="vm-detail-usage">
      <span title={figures.cpuTitle}>
        CPU <Sparkline values={history.vcpuPercent} max={100} />{' '}
        <span data-testid="vm-detail-cpu">
          {figures.cpu} {figures.cpuOf}
        </span>
      </span>
      <span title={figures.memoryTitle}>
        <span data-testid="vm-detail-memory">
          <span data-testid="vm-detail-guest-memory">{figures.guestMemory}</span>
          {' · '}
          <span data-testid="vm-detail-hypervisor-memory">{figures.hypervisorMemory}</span>
        </span>{' '}
        <Sparkline values={rss} max={Math.max(history.latest.guestMemoryBytes, ...rss)} />
      </span>
    </div>
  );
}
