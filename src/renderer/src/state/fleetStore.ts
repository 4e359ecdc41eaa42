import { create } from 'zustand';
import type { Vm } from '../../../shared/protocol/vm';
import type { VmStatsSample } from '../../../shared/protocol/vmStats';
import { pushSample, type VmStatsHistory } from './statsHistory';

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
  /**
   * Recent CPU/memory readings per VM key. Kept apart from `vms` so that a stats update (every VM, every few
   * seconds) neither bumps `version` nor re-sorts the table: only rows showing a changed history re-render.
   */
  stats: Record<string, VmStatsHistory>;
  /** Bumped on every change, for views that derive sorted lists. */
  version: number;
  replaceHost(hostId: string, vms: Vm[]): void;
  upsert(hostId: string, vm: Vm): void;
  remove(hostId: string, vmId: string): void;
  dropHost(hostId: string): void;
  addEvent(hostId: string, vmId: string, line: VmEventLine): void;
  /** Many changes in one store update (one render), as events arrive in bursts. */
  applyBatch(ops: FleetOp[]): void;
  /** Appends each host's samples to its VMs' histories, in one store update. */
  applyStats(batches: readonly { hostId: string; samples: readonly VmStatsSample[] }[]): void;
}

export type FleetOp = { op: 'upsert'; hostId: string; vm: Vm } | { op: 'remove'; hostId: string; vmId: string };

export const vmKey = (hostId: string, vmId: string): string => `${hostId}/${vmId}`;
const EVENTS_KEPT = 200;

export const useFleetStore = create<FleetState>()((set) => ({
  vms: {},
  events: {},
  stats: {},
  version: 0,
  replaceHost: (hostId, list) =>
    set((s) => {
      const vms: Record<string, FleetVm> = {};
      for (const [k, v] of Object.entries(s.vms)) if (v.hostId !== hostId) vms[k] = v;
      for (const vm of list) vms[vmKey(hostId, vm.id)] = { hostId, vm };
      return { vms, stats: keepStatsOf(vms, s.stats), version: s.version + 1 };
    }),
  upsert: (hostId, vm) =>
    set((s) => ({ vms: { ...s.vms, [vmKey(hostId, vm.id)]: { hostId, vm } }, version: s.version + 1 })),
  remove: (hostId, vmId) =>
    set((s) => {
      const { [vmKey(hostId, vmId)]: _gone, ...vms } = s.vms;
      const { [vmKey(hostId, vmId)]: _history, ...stats } = s.stats;
      return { vms, stats, version: s.version + 1 };
    }),
  dropHost: (hostId) =>
    set((s) => {
      const vms: Record<string, FleetVm> = {};
      for (const [k, v] of Object.entries(s.vms)) if (v.hostId !== hostId) vms[k] = v;
      return { vms, stats: keepStatsOf(vms, s.stats), version: s.version + 1 };
    }),
  applyBatch: (ops) =>
    set((s) => {
      const vms = new Map(Object.entries(s.vms));
      for (const o of ops) {
        if (o.op === 'upsert') vms.set(vmKey(o.hostId, o.vm.id), { hostId: o.hostId, vm: o.vm });
        else vms.delete(vmKey(o.hostId, o.vmId));
      }
      const removed = ops.some((o) => o.op === 'remove');
      const next = Object.fromEntries(vms);
      return { vms: next, ...(removed ? { stats: keepStatsOf(next, s.stats) } : {}), version: s.version + 1 };
    }),
  applyStats: (batches) =>
    set((s) => {
      const stats = { ...s.stats };
      for (const { hostId, samples } of batches) {
        for (const sample of samples) {
          const key = vmKey(hostId, sample.vmId);
          // Samples may race a VM's removal; histories exist only for VMs in the table.
          if (!s.vms[key]) continue;
          stats[key] = pushSample(stats[key], sample);
        }
      }
      return { stats };
    }),
  addEvent: (hostId, vmId, line) =>
    set((s) => {
      const key = vmKey(hostId, vmId);
      const list = [...(s.events[key] ?? []), line].slice(-EVENTS_KEPT);
      return { events: { ...s.events, [key]: list } };
    }),
}));

function keepStatsOf(
  vms: Record<string, FleetVm>,
  stats: Record<string, VmStatsHistory>,
): Record<string, VmStatsHistory> {
  const kept: Record<string, VmStatsHistory> = {};
  for (const [k, v] of Object.entries(stats)) if (vms[k]) kept[k] = v;
  return kept;
}
