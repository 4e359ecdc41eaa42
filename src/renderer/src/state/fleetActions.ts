import { FiredeckError } from '../../../shared/errors';
import type { DaemonEvent } from '../../../shared/protocol/events';
import type { Vm } from '../../../shared/protocol/vm';
import type { VmStatsSample } from '../../../shared/protocol/vmStats';
import type { AppClient } from '../api/appClient';
import { daemonCall } from '../api/daemonCall';
import { createVmActions, type CreateVmActions } from './createVmActions';
import { useFleetStore, vmKey, type FleetOp } from './fleetStore';
import { useHostsStore } from './hostsStore';
import { useUiStore } from './uiStore';

export type VmAction = 'start' | 'stop' | 'restart' | 'destroy' | 'kill';

export interface FleetActions extends CreateVmActions {
  refresh(hostId: string): Promise<void>;
  /** A fresh list from every connected host (after the page's link to main came back). */
  refreshConnected(): Promise<void>;
  run(hostId: string, vmId: string, action: VmAction): Promise<void>;
}

/**
 * Keeps the fleet current: a full `vm.list` whenever a host (re)connects, then its events, applied in one
 * store update per animation frame so a burst of changes costs one render.
 */
export function createFleetActions(client: AppClient, schedule: (fn: () => void) => void = frame): FleetActions {
  let queue: FleetOp[] = [];
  let statsQueue: { hostId: string; samples: VmStatsSample[] }[] = [];
  let scheduled = false;
  const flush = (): void => {
    scheduled = false;
    const ops = queue;
    const stats = statsQueue;
    queue = [];
    statsQueue = [];
    // Rows first, so that samples of a VM created in the same frame find its row.
    if (ops.length > 0) useFleetStore.getState().applyBatch(ops);
    if (stats.length > 0) useFleetStore.getState().applyStats(stats);
  };
  const wake = (): void => {
    if (!scheduled) {
      scheduled = true;
      schedule(flush);
    }
  };
  const enqueue = (op: FleetOp): void => {
    queue.push(op);
    wake();
  };

  /** The newest known state of a VM: a queued change not yet applied wins over the store. */
  const latest = (hostId: string, vmId: string): Vm | undefined => {
    for (let i = queue.length - 1; i >= 0; i--) {
      const o = queue[i]!;
      if (o.hostId !== hostId) continue;
      if (o.op === 'upsert' && o.vm.id === vmId) return o.vm;
      if (o.op === 'remove' && o.vmId === vmId) return undefined;
    }
    return useFleetStore.getState().vms[vmKey(hostId, vmId)]?.vm;
  };

  const refresh = async (hostId: string): Promise<void> => {
    const list = await daemonCall(client, hostId, 'vm.list', {});
    queue = queue.filter((o) => o.hostId !== hostId);
    useFleetStore.getState().replaceHost(hostId, list);
    // Seed the sparklines with the daemon's latest readings instead of waiting for its next tick; a daemon too
    // old to know `vm.stats` just leaves them to the events.
    const stats = await daemonCall(client, hostId, 'vm.stats', {}).catch(() => null);
    if (stats && stats.samples.length > 0) {
      statsQueue.push({ hostId, samples: stats.samples });
      wake();
    }
  };

  const onDaemonEvent = (hostId: string, event: DaemonEvent, at: string): void => {
    const fleet = useFleetStore.getState();
    switch (event.type) {
      case 'vm.created':
        enqueue({ op: 'upsert', hostId, vm: event.vm });
        fleet.addEvent(hostId, event.vm.id, { at, text: `created (${event.vm.kind}, ${event.vm.image})` });
        break;
      case 'vm.state':
        enqueue({ op: 'upsert', hostId, vm: event.vm });
        fleet.addEvent(hostId, event.vm.id, {
          at,
          text: `${event.from} → ${event.to}${event.vm.lastError ? `: ${event.vm.lastError}` : ''}`,
        });
        break;
      case 'vm.ready': {
        // Events of one frame are applied together: build on the queued state, not the store's older one.
        const vm = latest(hostId, event.vmId);
        if (vm && !vm.ready.includes(event.marker)) {
          enqueue({ op: 'upsert', hostId, vm: { ...vm, ready: [...vm.ready, event.marker] } });
        }
        fleet.addEvent(hostId, event.vmId, { at, text: `ready: ${event.marker}` });
        break;
      }
      case 'vm.destroyed':
        enqueue({ op: 'remove', hostId, vmId: event.vmId });
        break;
      case 'vm.health':
        enqueue({ op: 'upsert', hostId, vm: event.vm });
        fleet.addEvent(hostId, event.vm.id, {
          at,
          text: event.vm.unresponsiveSince
            ? 'unresponsive: its hypervisor missed the health probe'
            : 'responsive again',
        });
        break;
      case 'vm.stats':
        statsQueue.push({ hostId, samples: event.samples });
        wake();
        break;
      default:
        break;
    }
  };

  client.onEvent((e) => {
    if (e.type === 'daemon.event') onDaemonEvent(e.hostId, e.envelope.event, e.envelope.at);
  });

  // A host that (re)connects gets a fresh list: events missed while the link was down are not replayed.
  useHostsStore.subscribe((next, prev) => {
    for (const [hostId, status] of Object.entries(next.statuses)) {
      const before = prev.statuses[hostId]?.state;
      if (status.state === 'connected' && before !== 'connected') {
        refresh(hostId).catch((err: unknown) => useUiStore.getState().toast(FiredeckError.from(err).message, 'error'));
      }
      // Only the operator's disconnect empties a host's rows. A link that dropped (reconnecting, or failed for
      // good) leaves them in place, shown as unreachable: the VMs still run there.
      if (status.state === 'disconnected' && before !== undefined && before !== 'disconnected') {
        useFleetStore.getState().dropHost(hostId);
      }
    }
  });

  return {
    // The daemon announces a new VM (`vm.created`) before vm.create returns; its answer fills the row in only
    // if that event has not come (never overwriting the newer states events brought meanwhile).
    ...createVmActions(client, (hostId, vm) => {
      if (!latest(hostId, vm.id)) enqueue({ op: 'upsert', hostId, vm });
    }),
    refresh,
    async refreshConnected() {
      const connected = Object.values(useHostsStore.getState().statuses).filter((s) => s.state === 'connected');
      await Promise.all(
        connected.map((s) =>
          refresh(s.hostId).catch((err: unknown) =>
            useUiStore.getState().toast(FiredeckError.from(err).message, 'error'),
          ),
        ),
      );
    },
    async run(hostId, vmId, action) {
      const ui = useUiStore.getState();
      const name = useFleetStore.getState().vms[vmKey(hostId, vmId)]?.vm.name ?? vmId;
      try {
        let vm: Vm;
        switch (action) {
          case 'start':
            vm = await daemonCall(client, hostId, 'vm.start', { id: vmId });
            break;
          case 'stop':
            vm = await daemonCall(client, hostId, 'vm.stop', { id: vmId });
            break;
          case 'kill':
            vm = await daemonCall(client, hostId, 'vm.stop', { id: vmId, force: true, timeoutSeconds: 0 });
            break;
          case 'restart':
            vm = await daemonCall(client, hostId, 'vm.restart', { id: vmId });
            break;
          case 'destroy':
            vm = await daemonCall(client, hostId, 'vm.destroy', { id: vmId });
            break;
        }
        if (vm.state === 'destroyed') enqueue({ op: 'remove', hostId, vmId });
        else enqueue({ op: 'upsert', hostId, vm });
        ui.toast(`${name}: ${action} done (${vm.state})`);
      } catch (err) {
        const e = FiredeckError.from(err);
        ui.toast(`${name}: ${action} failed: ${e.message}`, 'error');
      }
    },
  };
}

function frame(fn: () => void): void {
  if (typeof requestAnimationFrame === 'function' && document.visibilityState === 'visible') requestAnimationFrame(fn);
  else setTimeout(fn, 16);
}
