import { describe, expect, it } from 'vitest';
import type { AppCallName, AppEvent, AppParams, AppResult } from '../../../shared/app/contract';
import type { DaemonEvent } from '../../../shared/protocol/events';
import type { Vm } from '../../../shared/protocol/vm';
import type { AppClient } from '../api/appClient';
import { createFleetActions } from './fleetActions';
import { useFleetStore, vmKey } from './fleetStore';

const base: Vm = {
  id: 'vm-0000abcd',
  name: 'a',
  kind: 'cli',
  owner: 'ops',
  image: 'test',
  driver: 'qemu',
  vcpus: 1,
  memoryMib: 256,
  diskMib: 4096,
  address: '10.213.0.2',
  tap: null,
  mac: null,
  pid: 1,
  state: 'booting',
  ready: [],
  createdAt: '2026-01-01T00:00:00Z',
  updatedAt: '2026-01-01T00:00:00Z',
  startedAt: '2026-01-01T00:00:00Z',
  expiresAt: null,
  lastError: null,
} as Vm;

class EventSource implements AppClient {
  readonly transport = 'websocket' as const;
  private listener: ((e: AppEvent) => void) | null = null;
  call<N extends AppCallName>(_name: N, _params: AppParams<N>): Promise<AppResult<N>> {
    return Promise.reject(new Error('not used'));
  }
  onEvent(listener: (e: AppEvent) => void): () => void {
    this.listener = listener;
    return () => undefined;
  }
  daemon(event: DaemonEvent, seq: number): void {
    this.listener?.({
      type: 'daemon.event',
      hostId: 'local',
      envelope: { subscription: 's', seq, at: '2026-01-01T00:00:01Z', event },
    });
  }
}

describe('fleet actions: daemon events into the store', () => {
  it('applies a burst of events in one update, later events building on earlier ones', () => {
    const source = new EventSource();
    const frames: (() => void)[] = [];
    createFleetActions(source, (fn) => frames.push(fn));
    useFleetStore.getState().replaceHost('local', [base]);
    const before = useFleetStore.getState().version;

    // The same frame: running, then the ready marker that caused it.
    source.daemon({ type: 'vm.state', vm: { ...base, state: 'running' }, from: 'booting', to: 'running' }, 1);
    source.daemon({ type: 'vm.ready', vmId: base.id, marker: 'vm' }, 2);
    expect(frames).toHaveLength(1);
    frames.shift()!();

    const s = useFleetStore.getState();
    expect(s.version).toBe(before + 1);
    expect(s.vms[vmKey('local', base.id)]!.vm).toMatchObject({ state: 'running', ready: ['vm'] });
    expect(s.events[vmKey('local', base.id)]!.map((e) => e.text)).toEqual(['booting → running', 'ready: vm']);
  });

  it('applies vm.stats after the rows of the same frame, so a just-created VM gets its sample', () => {
    const source = new EventSource();
    const frames: (() => void)[] = [];
    createFleetActions(source, (fn) => frames.push(fn));
    useFleetStore.getState().replaceHost('local', []);
    const sample = {
      vmId: 'vm-0000cafe',
      at: '2026-01-01T00:00:02Z',
      vcpus: 2,
      vcpuPercent: 12.5,
      hostCpuPercent: 25,
      guestMemoryBytes: 256 << 20,
      hypervisorRssBytes: 200 << 20,
    };
    source.daemon({ type: 'vm.stats', samples: [sample] }, 6);
    source.daemon({ type: 'vm.created', vm: { ...base, id: 'vm-0000cafe', name: 'c', state: 'running' } }, 7);
    expect(frames).toHaveLength(1);
    frames.shift()!();
    expect(useFleetStore.getState().stats[vmKey('local', 'vm-0000cafe')]).toEqual({
      vcpuPercent: [12.5],
      hypervisorRssBytes: [200 << 20],
      latest: sample,
    });
  });

  it('removes destroyed VMs and adds created ones', () => {
    const source = new EventSource();
    const frames: (() => void)[] = [];
    createFleetActions(source, (fn) => frames.push(fn));
    useFleetStore.getState().replaceHost('local', [base]);
    source.daemon({ type: 'vm.created', vm: { ...base, id: 'vm-0000beef', name: 'b' } }, 3);
    source.daemon({ type: 'vm.destroyed', vmId: base.id }, 4);
    source.daemon({ type: 'vm.ready', vmId: base.id, marker: 'sshd' }, 5);
    frames.shift()!();
    expect(Object.values(useFleetStore.getState().vms).map((r) => r.vm.name)).toEqual(['b']);
  });
});
