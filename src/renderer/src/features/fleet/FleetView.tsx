import { memo, useEffect, useMemo, useRef, useState } from 'react';
import { VmState } from '../../../../shared/protocol/vm';
import { useFleetStore, vmKey, type FleetVm, type SortKey } from '../../state/fleetStore';
import { useHostsStore } from '../../state/hostsStore';
import { useActions } from '../../state/actionsContext';
import { useCreateVmStore } from '../../state/createVmStore';
import { useUiStore } from '../../state/uiStore';
import { CreateVmForm } from './CreateVmForm';
import { fleetRows, formatUptime, hostUnreachableNote, uptimeSeconds } from './fleetRows';
import { Sparkline } from './Sparkline';
import { usageFigures } from './usageFigures';
import { useNow } from './useNow';
import { VmActionButtons } from './VmActionButtons';
import { UnresponsivePill } from '../vm/UnresponsivePill';

const ROW_HEIGHT = 34;
const OVERSCAN = 8;

const COLUMNS: { key: SortKey | null; label: string; width: string; title?: string }[] = [
  { key: 'name', label: 'Name', width: '10%' },
  { key: 'host', label: 'Host', width: '11%' },
  { key: 'kind', label: 'Kind', width: '6%' },
  { key: 'state', label: 'State', width: '9%' },
  { key: 'owner', label: 'Owner', width: '10%' },
  { key: 'address', label: 'Address', width: '9%' },
  { key: 'uptime', label: 'Uptime', width: '7%' },
  { key: null, label: 'CPU', width: '10%', title: "Share of each VM's vCPUs (100% = all of them busy)" },
  {
    key: null,
    label: 'RSS',
    width: '10%',
    title:
      "Resident memory of each VM's hypervisor process on the host; the guest's own memory is in the cell's " +
      'tooltip and the VM view (and shown here while the VM is not running)',
  },
  { key: null, label: 'Actions', width: '18%' },
];

/** Live table of every VM on every connected host; only the visible rows are rendered. */
export function FleetView(): React.JSX.Element {
  const vms = useFleetStore((s) => s.vms);
  const hosts = useHostsStore((s) => s.hosts);
  const {
    fleetFilter,
    fleetStateFilter,
    fleetHostFilter,
    fleetSort,
    setFleetFilter,
    setFleetStateFilter,
    setFleetHostFilter,
    sortBy,
  } = useUiStore();
  const now = useNow(1000);
  const { fleet } = useActions();
  const creating = useCreateVmStore((s) => s.open);
  const statuses = useHostsStore((s) => s.statuses);
  const anyConnected = Object.values(statuses).some((s) => s.state === 'connected');
  const hostNames = useMemo(() => Object.fromEntries(hosts.map((h) => [h.id, h.name])), [hosts]);
  // Uptime sorting is the only order that moves with the clock; other orders are not re-sorted every second.
  const sortClock = fleetSort.key === 'uptime' ? now : 0;
  const rows = useMemo(
    () =>
      fleetRows(Object.values(vms), {
        text: fleetFilter,
        state: fleetStateFilter,
        host: fleetHostFilter,
        sort: fleetSort,
        hostNames,
        now: sortClock || Date.now(),
      }),
    [vms, fleetFilter, fleetStateFilter, fleetHostFilter, fleetSort, hostNames, sortClock],
  );
  const viewport = useRef<HTMLDivElement>(null);
  const [scrollTop, setScrollTop] = useState(0);
  const [height, setHeight] = useState(600);
  useEffect(() => {
    const el = viewport.current;
    if (!el) return;
    const observer = new ResizeObserver(() => setHeight(el.clientHeight));
    observer.observe(el);
    return () => observer.disconnect();
  }, []);
  const first = Math.max(0, Math.floor(scrollTop / ROW_HEIGHT) - OVERSCAN);
  const last = Math.min(rows.length, Math.ceil((scrollTop + height) / ROW_HEIGHT) + OVERSCAN);

  return (
    <section className="fleet-view">
      <div className="toolbar">
        <h2>Fleet</h2>
        <input
          type="search"
          placeholder="Filter by name, owner, address, host…"
          value={fleetFilter}
          onChange={(e) => setFleetFilter(e.target.value)}
          aria-label="Filter VMs"
          data-shortcut="filter"
        />
        <select value={fleetStateFilter} onChange={(e) => setFleetStateFilter(e.target.value)} aria-label="State">
          <option value="">all states</option>
          {VmState.options.map((s) => (
            <option key={s} value={s}>
              {s}
            </option>
          ))}
        </select>
        <select value={fleetHostFilter} onChange={(e) => setFleetHostFilter(e.target.value)} aria-label="Host">
          <option value="">all hosts</option>
          {hosts.map((h) => (
            <option key={h.id} value={h.id}>
              {h.name}
            </option>
          ))}
        </select>
        <span className="count" data-testid="fleet-count">
          {rows.length} of {Object.keys(vms).length} VMs
        </span>
        <button
          type="button"
          className="primary"
          onClick={() => (creating ? fleet.closeCreateForm() : fleet.openCreateForm())}
          disabled={!anyConnected && !creating}
          title={anyConnected ? 'Create a VM on a connected host' : 'Connect a host first'}
          aria-expanded={creating}
        >
          Create VM
        </button>
      </div>
      {creating ? <CreateVmForm /> : null}
      <div className="fleet-table" role="table" aria-label="VMs" aria-rowcount={rows.length}>
        <div className="fleet-row fleet-head" role="row">
          {COLUMNS.map((c) => (
            <div key={c.label} role="columnheader" style={{ width: c.width }} title={c.title}>
              {c.key ? (
                <button type="button" className="sort" onClick={() => sortBy(c.key!)}>
                  {c.label}
                  {fleetSort.key === c.key ? (fleetSort.dir === 1 ? ' ▲' : ' ▼') : ''}
                </button>
              ) : (
                c.label
              )}
            </div>
          ))}
        </div>
        <div
          className="fleet-viewport"
          ref={viewport}
          onScroll={(e) => setScrollTop(e.currentTarget.scrollTop)}
          data-testid="fleet-viewport"
        >
          <div style={{ height: rows.length * ROW_HEIGHT, position: 'relative' }}>
            {rows.slice(first, last).map((row, i) => (
              <FleetRow
                key={`${row.hostId}/${row.vm.id}`}
                row={row}
                top={(first + i) * ROW_HEIGHT}
                hostName={hostNames[row.hostId] ?? row.hostId}
                unreachable={hostUnreachableNote(statuses[row.hostId])}
                uptime={formatUptime(uptimeSeconds(row, now))}
              />
            ))}
          </div>
          {rows.length === 0 ? (
            <div className="empty">No VMs{fleetFilter || fleetStateFilter || fleetHostFilter ? ' match' : ''}.</div>
          ) : null}
        </div>
      </div>
    </section>
  );
}

const FleetRow = memo(function FleetRow(props: {
  row: FleetVm;
  top: number;
  hostName: string;
  /** Why the row's host cannot be reached, or null while it is connected. */
  unreachable: string | null;
  uptime: string;
}): React.JSX.Element {
  const { row, top, hostName, unreachable, uptime } = props;
  const show = useUiStore((s) => s.show);
  const vm = row.vm;
  return (
    <div
      className={unreachable ? 'fleet-row unreachable' : 'fleet-row'}
      role="row"
      aria-disabled={unreachable ? true : undefined}
      data-host={hostName}
      style={{ top, height: ROW_HEIGHT }}
      data-testid={`vm-row-${vm.name}`}
      onDoubleClick={() => show({ name: 'vm', hostId: row.hostId, vmId: vm.id })}
    >
      <div role="cell" style={{ width: COLUMNS[0]!.width }}>
        <button type="button" className="link" onClick={() => show({ name: 'vm', hostId: row.hostId, vmId: vm.id })}>
          {vm.name}
        </button>
      </div>
      <div role="cell" style={{ width: COLUMNS[1]!.width }} data-testid="vm-host" title={unreachable ?? undefined}>
        {hostName}
        {unreachable ? (
          <span className="unreachable-note" data-testid="host-unreachable">
            {' '}
            unreachable
          </span>
        ) : null}
      </div>
      <div role="cell" style={{ width: COLUMNS[2]!.width }}>
        {vm.kind}
      </div>
      <div role="cell" style={{ width: COLUMNS[3]!.width }}>
        <span className={`pill vm-${vm.state}`} data-testid="vm-state">
          {vm.state}
        </span>{' '}
        <UnresponsivePill vm={vm} testId="vm-unresponsive" />
      </div>
      <div role="cell" style={{ width: COLUMNS[4]!.width }} title={vm.owner}>
        {vm.owner}
      </div>
      <div role="cell" className="mono" style={{ width: COLUMNS[5]!.width }}>
        {vm.address ?? '—'}
      </div>
      <div role="cell" style={{ width: COLUMNS[6]!.width }}>
        {uptime}
      </div>
      <UsageCells row={row} />
      <div role="cell" className="row-actions" style={{ width: COLUMNS[9]!.width }}>
        <VmActionButtons hostId={row.hostId} hostName={hostName} vm={vm} unreachable={unreachable} />
      </div>
    </div>
  );
});

const MIB = 1024 * 1024;

/**
 * The CPU and memory cells: the daemon's latest reading with its recent history while the VM runs (CPU as a
 * share of the VM's vCPUs, memory as its hypervisor process's resident set, the guest's memory in the title),
 * the configured size otherwise. Each row subscribes to its own history, so a stats update re-renders only
 * these cells of the visible rows, never the table.
 */
export const UsageCells = memo(function UsageCells(props: { row: FleetVm }): React.JSX.Element {
  const { vm, hostId } = props.row;
  const history = useFleetStore((s) => s.stats[vmKey(hostId, vm.id)]);
  const live = history !== undefined && (vm.state === 'running' || vm.state === 'booting' || vm.state === 'stopping');
  const figures = live ? usageFigures(history.latest, vm.driver) : null;
  const configuredBytes = vm.memoryMib * MIB;
  return (
    <>
      <div
        role="cell"
        className="usage"
        style={{ width: COLUMNS[7]!.width }}
        data-testid="vm-cpu"
        title={figures?.cpuTitle ?? `${vm.vcpus} vCPU configured`}
      >
        {live && figures ? (
          <>
            <Sparkline values={history.vcpuPercent} max={100} />
            <span data-testid="vm-cpu-live">{figures.cpu}</span>
          </>
        ) : (
          <span className="muted">{vm.vcpus} vCPU</span>
        )}
      </div>
      <div
        role="cell"
        className="usage"
        style={{ width: COLUMNS[8]!.width }}
        data-testid="vm-memory"
        title={figures?.memoryTitle ?? `Guest memory ${vm.memoryMib} MiB configured`}
      >
        {live && figures ? (
          <>
            <Sparkline
              values={history.hypervisorRssBytes}
              max={Math.max(configuredBytes, ...history.hypervisorRssBytes)}
            />
            <span data-testid="vm-memory-live">{figures.hypervisorRss}</span>
          </>
        ) : (
          <span className="muted">{vm.memoryMib} MiB guest</span>
        )}
      </div>
    </>
  );
});
