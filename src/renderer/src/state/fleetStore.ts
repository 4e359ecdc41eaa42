import { create } from 'zustand';
import type { Vm } from '../../../shared/protocol/vm';

export interface FleetVm {
  hostId: string;
  vm: Vm;
}

export type SortKey = 'name' | 'state' | 'kind' | 'owner' | 'address' | 'uptime' | 'host';

export interface VmEventLine {
  at: string;
  text: string;
}

/** Server state: the VMs each connected host reported, kept current by its events. */
export interface FleetState {
  /** `${hostId}/${vmId}` → row; replaced per update so React sees changed rows only. */
  vms: Record<string, FleetVm>;
  /** Recent events per VM key, newest last. */
  events: Record<string, VmEventLine[]>;
  /** Bumped on every change, for views that derive sorted lists. */
  version: number;
  replaceHost(hostId: string, vms: Vm[]): void;
  upsert(hostId: string, vm: Vm): void;
  remove(hostId: string, vmId: string): void;
  dropHost(hostId: string): void;
  addEvent(hostId: string, vmId: string, line: VmEventLine): void;
  /** Many changes in one store update (one render), as events arrive in bursts. */
  applyBatch(ops: FleetOp[]): void;
}

export type FleetOp = { op: 'upsert'; hostId: string; vm: Vm } | { op: 'remove'; hostId: string; vmId: string };

export const vmKey = (hostId: string, vmId: string): string => `${hostId}/${vmId}`;
const EVENTS_KEPT = 200;

export const useFleetStore = create<FleetState>()((set) => ({
  vms: {},
  events: {},
  version: 0,
  replaceHost: (hostId, list) =>
    set((s) => {
      const vms: Record<string, FleetVm> = {};
      for (const [k, v] of Object.entries(s.vms)) if (v.hostId !== hostId) vms[k] = v;
      for (const vm of list) vms[vmKey(hostId, vm.id)] = { hostId, vm };
      return { vms, version: s.version + 1 };
    }),
  upsert: (hostId, vm) =>
    set((s) => ({ vms: { ...s.vms, [vmKey(hostId, vm.id)]: { hostId, vm } }, version: s.version + 1 })),
  remove: (hostId, vmId) =>
    set((s) => {
      const { [vmKey(hostId, vmId)]: _gone, ...vms } = s.vms;
      return { vms, version: s.version + 1 };
    }),
  dropHost: (hostId) =>
    set((s) => {
      const vms: Record<string, FleetVm> = {};
      for (const [k, v] of Object.entries(s.vms)) if (v.hostId !== hostId) vms[k] = v;
      return { vms, version: s.version + 1 };
    }),
  applyBatch: (ops) =>
    set((s) => {
      const vms = new Map(Object.entries(s.vms));
      for (const o of ops) {
        if (o.op === 'upsert') vms.set(vmKey(o.hostId, o.vm.id), { hostId: o.hostId, vm: o.vm });
        else vms.delete(vmKey(o.hostId, o.vmId));
      }
      return { vms: Object.fromEntries(vms), version: s.version + 1 };
    }),
  addEvent: (hostId, vmId, line) =>
    set((s) => {
      const key = vmKey(hostId, vmId);
      const list = [...(s.events[key] ?? []), line].slice(-EVENTS_KEPT);
      return { events: { ...s.events, [key]: list } };
    }),
}));
