import { create } from 'zustand';
import type { Host, HostStatus } from '../../../shared/app/contract';
import type { DaemonEvent } from '../../../shared/protocol/events';

/** A host key the operator has to confirm before the first connect goes on. */
export interface PendingTrust {
  hostId: string;
  hostName: string;
  fingerprint: string;
  keyType: string;
}

/** Server state about hosts: what main reports. Views read it; only the actions in state/ write it. */
export interface HostsState {
  hosts: Host[];
  statuses: Record<string, HostStatus>;
  selectedHostId: string | null;
  pendingTrust: PendingTrust | null;
  /** The last failed action, in words with its fix, until dismissed. */
  notice: { message: string; hint?: string | undefined } | null;
  lastEvent: { hostId: string; event: DaemonEvent } | null;
  setHosts(hosts: Host[]): void;
  setStatus(status: HostStatus): void;
  select(hostId: string | null): void;
  setPendingTrust(trust: PendingTrust | null): void;
  setNotice(notice: HostsState['notice']): void;
  setLastEvent(e: HostsState['lastEvent']): void;
}

export const useHostsStore = create<HostsState>()((set) => ({
  hosts: [],
  statuses: {},
  selectedHostId: null,
  pendingTrust: null,
  notice: null,
  lastEvent: null,
  setHosts: (hosts) =>
    set((s) => ({
      hosts,
      selectedHostId:
        s.selectedHostId !== null && hosts.some((h) => h.id === s.selectedHostId)
          ? s.selectedHostId
          : (hosts[0]?.id ?? null),
    })),
  setStatus: (status) => set((s) => ({ statuses: { ...s.statuses, [status.hostId]: status } })),
  select: (selectedHostId) => set({ selectedHostId }),
  setPendingTrust: (pendingTrust) => set({ pendingTrust }),
  setNotice: (notice) => set({ notice }),
  setLastEvent: (lastEvent) => set({ lastEvent }),
}));
