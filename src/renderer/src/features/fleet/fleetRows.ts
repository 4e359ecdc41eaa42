import type { HostStatus } from '../../../../shared/app/contract';
import type { FleetVm, SortKey } from '../../state/fleetStore';

/**
 * Why a host's rows cannot be acted on, or null while its link is up. Rows of a host whose link dropped stay
 * in the fleet (the VMs keep running there); they show this note and their actions are off until it is back.
 */
export function hostUnreachableNote(status: HostStatus | undefined): string | null {
  switch (status?.state) {
    case 'connected':
      return null;
    case 'reconnecting':
    case 'connecting':
      return 'host unreachable, reconnecting…';
    default:
      return 'host unreachable';
  }
}

/** Seconds since the VM started, or null when it is not running. */
export function uptimeSeconds(row: FleetVm, now: number): number | null {
  if (row.vm.state !== 'running' || row.vm.startedAt === null) return null;
  return Math.max(0, Math.floor((now - Date.parse(row.vm.startedAt)) / 1000));
}

export function formatUptime(seconds: number | null): string {
  if (seconds === null) return '—';
  const d = Math.floor(seconds / 86400);
  const h = Math.floor((seconds % 86400) / 3600);
  const m = Math.floor((seconds % 3600) / 60);
  if (d > 0) return `${d}d ${h}h`;
  if (h > 0) return `${h}h ${m}m`;
  return `${m}m ${seconds % 60}s`;
}

/**
 * Filter (free text over name, owner, address, id, host; an exact state; one host's id) then sort; pure, for
 * views and the bench.
 */
export function fleetRows(
  all: Iterable<FleetVm>,
  opts: {
    text: string;
    state: string;
    /** Only this host's VMs; empty for every host. */
    host?: string;
    sort: { key: SortKey; dir: 1 | -1 };
    hostNames: Record<string, string>;
    now: number;
  },
): FleetVm[] {
  const needle = opts.text.trim().toLowerCase();
  const out: FleetVm[] = [];
  for (const row of all) {
    if (opts.state && row.vm.state !== opts.state) continue;
    if (opts.host && row.hostId !== opts.host) continue;
    if (needle) {
      const hay =
        `${row.vm.name} ${row.vm.owner} ${row.vm.address ?? ''} ${row.vm.id} ${opts.hostNames[row.hostId] ?? ''} ${row.vm.kind}`.toLowerCase();
      if (!hay.includes(needle)) continue;
    }
    out.push(row);
  }
  const { key, dir } = opts.sort;
  const value = (r: FleetVm): string | number => {
    switch (key) {
      case 'uptime':
        return uptimeSeconds(r, opts.now) ?? -1;
      case 'host':
        return opts.hostNames[r.hostId] ?? r.hostId;
      case 'address':
        return addressOrder(r.vm.address);
      default:
        return r.vm[key];
    }
  };
  out.sort((a, b) => {
    const va = value(a);
    const vb = value(b);
    const c = typeof va === 'number' && typeof vb === 'number' ? va - vb : String(va).localeCompare(String(vb));
    return c !== 0 ? c * dir : a.vm.id.localeCompare(b.vm.id);
  });
  return out;
}

function addressOrder(address: string | null): number {
  if (!address) return -1;
  const parts = address.split('.').map(Number);
  return parts.length === 4 ? ((parts[0]! * 256 + parts[1]!) * 256 + parts[2]!) * 256 + parts[3]! : -1;
}
