import { beforeEach, describe, expect, it } from 'vitest';
import type { AppCallName, AppEvent, AppParams, AppResult } from '../../../shared/app/contract';
import { FiredeckError } from '../../../shared/errors';
import type { Vm, VmCreateParams } from '../../../shared/protocol/vm';
import type { AppClient } from '../api/appClient';
import { createVmActions } from './createVmActions';
import { emptyDraft } from './createVmDraft';
import { choices, info } from './createVmFixtures';
import { useCreateVmStore } from './createVmStore';
import { useFleetStore } from './fleetStore';
import { useHostsStore } from './hostsStore';

/** A host answering daemon.info, image.list and vm.create, recording the creates; `refuse` makes vm.create fail. */
class CreateHost implements AppClient {
  readonly transport = 'websocket' as const;
  readonly creates: VmCreateParams[] = [];
  refuse: FiredeckError | null = null;
  call<N extends AppCallName>(name: N, params: AppParams<N>): Promise<AppResult<N>> {
    const { method, params: p } = params as { method: string; params: unknown };
    if (name !== 'daemon.call') return Promise.reject(new Error(`unexpected ${name}`));
    if (method === 'daemon.info') return Promise.resolve(info() as AppResult<N>);
    if (method === 'image.list') return Promise.resolve(choices().images as AppResult<N>);
    if (method === 'vm.create') {
      this.creates.push(p as VmCreateParams);
      if (this.refuse) return Promise.reject(this.refuse);
      return Promise.resolve({ id: 'vm-0000abcd', name: (p as VmCreateParams).name, state: 'booting' } as AppResult<N>);
    }
    return Promise.reject(new Error(`unexpected ${method}`));
  }
  onEvent(_listener: (e: AppEvent) => void): () => void {
    return () => undefined;
  }
}

const host = { id: 'h1', name: 'rig', kind: 'ssh', address: 'rig', port: 22, user: 'root', auth: null } as const;

beforeEach(() => {
  useHostsStore.setState({
    hosts: [{ ...host, hostKeyFingerprint: null }],
    selectedHostId: 'h1',
    statuses: { h1: { hostId: 'h1', state: 'connected', info: null, error: null, attempt: 0, nextAttemptAt: null } },
  });
  useFleetStore.setState({ vms: {} });
  useCreateVmStore.setState({
    open: false,
    draft: emptyDraft(''),
    choices: {},
    loading: false,
    loadError: null,
    touched: {},
    submitted: false,
    submitting: false,
    error: null,
  });
});

async function opened(client: CreateHost, created: Vm[] = []) {
  const actions = createVmActions(client, (_hostId, vm) => created.push(vm));
  actions.openCreateForm();
  await actions.loadCreateChoices();
  return actions;
}

describe('create VM actions', () => {
  it("opens on the connected host with its limits and the kind's image picked", async () => {
    await opened(new CreateHost());
    const s = useCreateVmStore.getState();
    expect(s.open).toBe(true);
    expect(s.draft.hostId).toBe('h1');
    expect(s.choices.h1?.info.resources?.memoryAvailableBytes).toBe(3000 * 1024 * 1024);
    // The host publishes a `cli` image: a CLI VM gets it.
    expect(s.draft.image).toBe('cli');
  });

  it('sends nothing while the draft has errors', async () => {
    const client = new CreateHost();
    const actions = await opened(client);
    useCreateVmStore.getState().edit({ name: 'dev-a', owner: 'ops', memoryMib: '9999' });
    expect(await actions.submitCreate()).toBeNull();
    expect(client.creates).toEqual([]);
    expect(useCreateVmStore.getState().submitted).toBe(true);
  });

  it("keeps everything typed and the daemon's refusal when vm.create fails", async () => {
    const client = new CreateHost();
    client.refuse = new FiredeckError('conflict', 'A VM named dev-a already exists', { hint: 'Pick another name.' });
    const actions = await opened(client);
    useCreateVmStore.getState().edit({ name: 'dev-a', owner: 'ops', diskMib: '3000' });
    const before = useCreateVmStore.getState().draft;
    expect(await actions.submitCreate()).toBeNull();
    expect(client.creates).toEqual([
      { name: 'dev-a', kind: 'cli', owner: 'ops', image: 'cli', vcpus: 1, memoryMib: 1024, diskMib: 3000 },
    ]);
    const s = useCreateVmStore.getState();
    expect(s.open).toBe(true);
    expect(s.draft).toEqual(before);
    expect(s.error).toEqual({
      kind: 'conflict',
      message: 'A VM named dev-a already exists',
      hint: 'Pick another name.',
    });
    expect(s.submitting).toBe(false);
  });

  it('closes on success, hands the VM to the fleet, and keeps the choices but not the name', async () => {
    const created: Vm[] = [];
    const actions = await opened(new CreateHost(), created);
    useCreateVmStore.getState().edit({ name: 'dev-b', owner: 'ops', driver: 'qemu' });
    const vm = await actions.submitCreate();
    expect(vm?.name).toBe('dev-b');
    expect(created.map((v) => v.name)).toEqual(['dev-b']);
    const s = useCreateVmStore.getState();
    expect(s.open).toBe(false);
    expect(s.draft).toMatchObject({ name: '', owner: 'ops', driver: 'qemu', image: 'cli' });
  });
});
