import { renderToStaticMarkup } from 'react-dom/server';
import { beforeEach, describe, expect, it } from 'vitest';
import type { AppCallName, AppEvent, AppParams, AppResult, Host, HostStatus } from '../../../../shared/app/contract';
import type { Vm } from '../../../../shared/protocol/vm';
import type { AppClient } from '../../api/appClient';
import { ActionsContext, type Actions } from '../../state/actionsContext';
import { createFleetActions } from '../../state/fleetActions';
import { useFleetStore, vmKey } from '../../state/fleetStore';
import { useHostsStore } from '../../state/hostsStore';
import { useUiStore } from '../../state/uiStore';
import { FleetView } from './FleetView';
import { fleetRows, hostUnreachableNote } from './fleetRows';

const vm = (id: string, name: string, patch: Partial<Vm> = {}): Vm =>
  ({
    id,
    name,
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
    state: 'running',
    ready: [],
    createdAt: '2026-01-01T00:00:00Z',
    updatedAt: '2026-01-01T00:00:00Z',
    startedAt: '2026-01-01T00:00:00Z',
    expiresAt: null,
    lastError: null,
    ...patch,
  }) as Vm;

const host = (id: string, name: string): Host => ({
  id,
  name,
  kind: 'ssh',
  address: name,
  port: 22,
  user: 'root',
  auth: { type: 'agent' },
  hostKeyFingerprint: null,
});
const status = (hostId: string, state: HostStatus['state']): HostStatus => ({
  hostId,
  state,
  info: null,
  error: null,
  attempt: 0,
  nextAttemptAt: null,
});

/** What main would answer, per host: each host's own VMs; every daemon call is recorded with the host it named. */
class TwoHostMain implements AppClient {
  readonly transport = 'websocket' as const;
  readonly calls: { hostId: string; method: string; params: unknown }[] = [];
  constructor(private readonly vmsOf: Record<string, Vm[]>) {}
  call<N extends AppCallName>(name: N, params: AppParams<N>): Promise<AppResult<N>> {
    if (name !== 'daemon.call') return Promise.reject(new Error(`unexpected ${name}`));
    const { hostId, method, params: p } = params as AppParams<'daemon.call'>;
    this.calls.push({ hostId, method, params: p });
    const own = this.vmsOf[hostId] ?? [];
    const id = (p as { id?: string }).id;
    const target = own.find((v) => v.id === id);
    const answer =
      method === 'vm.list'
        ? own
        : method === 'vm.stats'
          ? { samples: [] }
          : target
            ? { ...target, state: method === 'vm.stop' ? 'stopped' : target.state }
            : Promise.reject(new Error(`no ${String(id)} on ${hostId}`));
    return Promise.resolve(answer as AppResult<N>);
  }
  onEvent(_listener: (e: AppEvent) => void): () => void {
    return () => undefined;
  }
}

// Two hosts whose VMs share an id: only the host id tells them apart.
const SAME_ID = 'vm-0000abcd';
const onA = vm(SAME_ID, 'alpha-vm');
const onB = vm(SAME_ID, 'beta-vm');

beforeEach(() => {
  useHostsStore.setState({ hosts: [host('hA', 'alpha'), host('hB', 'beta')], statuses: {} });
  useFleetStore.setState({ vms: {}, stats: {}, events: {}, version: 0 });
  useUiStore.setState({ fleetFilter: '', fleetStateFilter: '', fleetHostFilter: '', toasts: [] });
});

const settle = async (frames: (() => void)[]): Promise<void> => {
  await new Promise((resolve) => setTimeout(resolve, 0));
  while (frames.length > 0) frames.shift()!();
};

describe('one fleet across hosts', () => {
  it('sends each action to the VM’s own host and updates only that row', async () => {
    const main = new TwoHostMain({ hA: [onA], hB: [onB] });
    const frames: (() => void)[] = [];
    const fleet = createFleetActions(main, (fn) => frames.push(fn));
    await fleet.refresh('hA');
    await fleet.refresh('hB');
    main.calls.length = 0;

    await fleet.run('hB', SAME_ID, 'stop');
    await settle(frames);
    expect(main.calls).toEqual([{ hostId: 'hB', method: 'vm.stop', params: { id: SAME_ID } }]);
    const vms = useFleetStore.getState().vms;
    expect(vms[vmKey('hB', SAME_ID)]!.vm.state).toBe('stopped');
    expect(vms[vmKey('hA', SAME_ID)]!.vm.state).toBe('running');

    for (const action of ['start', 'restart', 'destroy', 'kill'] as const) await fleet.run('hA', SAME_ID, action);
    expect(new Set(main.calls.slice(1).map((c) => c.hostId))).toEqual(new Set(['hA']));
  });

  it("keeps a dropped host's rows, refreshes only that host when it is back, and empties them only on disconnect", async () => {
    const main = new TwoHostMain({ hA: [onA], hB: [onB] });
    const frames: (() => void)[] = [];
    createFleetActions(main, (fn) => frames.push(fn));
    const set = (hostId: string, state: HostStatus['state']): void =>
      useHostsStore.getState().setStatus(status(hostId, state));
    set('hA', 'connected');
    set('hB', 'connected');
    await settle(frames);
    expect(Object.keys(useFleetStore.getState().vms).sort()).toEqual([vmKey('hA', SAME_ID), vmKey('hB', SAME_ID)]);

    main.calls.length = 0;
    set('hB', 'reconnecting');
    await settle(frames);
    expect(Object.keys(useFleetStore.getState().vms)).toContain(vmKey('hB', SAME_ID));
    set('hB', 'failed');
    expect(Object.keys(useFleetStore.getState().vms)).toContain(vmKey('hB', SAME_ID));
    set('hB', 'connected');
    await settle(frames);
    expect(main.calls.map((c) => c.hostId)).toEqual(['hB', 'hB']);

    set('hB', 'disconnected');
    expect(Object.keys(useFleetStore.getState().vms)).toEqual([vmKey('hA', SAME_ID)]);
  });

  it('filters by host', () => {
    const rows = fleetRows(
      [
        { hostId: 'hA', vm: onA },
        { hostId: 'hB', vm: onB },
      ],
      { text: '', state: '', host: 'hB', sort: { key: 'name', dir: 1 }, hostNames: {}, now: 0 },
    );
    expect(rows.map((r) => r.vm.name)).toEqual(['beta-vm']);
  });

  it('says why a host is unreachable, and nothing while it is connected', () => {
    expect(hostUnreachableNote(status('h', 'connected'))).toBeNull();
    expect(hostUnreachableNote(status('h', 'reconnecting'))).toBe('host unreachable, reconnecting…');
    expect(hostUnreachableNote(status('h', 'failed'))).toBe('host unreachable');
    expect(hostUnreachableNote(undefined)).toBe('host unreachable');
  });

  it("dims an unreachable host's rows with the note and actions off, while the other host's rows stay live", () => {
    useFleetStore.getState().replaceHost('hA', [onA]);
    useFleetStore.getState().replaceHost('hB', [onB]);
    useHostsStore.setState({ statuses: { hA: status('hA', 'connected'), hB: status('hB', 'reconnecting') } });
    // A static render reads each store's initial state (its server snapshot): make that the state set above.
    for (const store of [useFleetStore, useHostsStore, useUiStore]) {
      Object.assign(store.getInitialState(), store.getState());
    }
    const html = renderToStaticMarkup(
      <ActionsContext.Provider value={{ fleet: {} } as Actions}>
        <FleetView />
      </ActionsContext.Provider>,
    );
    // Each row is one segment: from its opening tag up to the next row's.
    const rows = html.split(/(?=<div class="fleet-row[ "])/);
    const rowOf = (name: string): string => rows.find((r) => r.includes(`data-testid="vm-row-${name}"`)) ?? '';
    const a = rowOf('alpha-vm');
    const b = rowOf('beta-vm');
    expect(b).toContain('class="fleet-row unreachable"');
    expect(b).toContain('host unreachable, reconnecting…');
    expect(b).toContain('data-testid="host-unreachable"> unreachable</span>');
    expect(b.match(/<button type="button"[^>]*>(Stop|Restart|Destroy)</g)!.every((t) => t.includes('disabled'))).toBe(
      true,
    );
    expect(a).toContain('class="fleet-row"');
    expect(a).not.toContain('host unreachable');
    expect(a).not.toMatch(/<button[^>]*disabled/);
    // The Host column and the host filter list both hosts.
    expect(a).toContain('data-testid="vm-host">alpha<');
    expect(html).toContain('<option value="hB">beta</option>');
  });
});
