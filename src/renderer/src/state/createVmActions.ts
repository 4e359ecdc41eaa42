import { toAppError } from '../../../shared/errors';
import type { Vm } from '../../../shared/protocol/vm';
import type { AppClient } from '../api/appClient';
import { daemonCall } from '../api/daemonCall';
import { createParams, defaultImage, validateDraft, withKind, type CreateVmDraft } from './createVmDraft';
import { useCreateVmStore } from './createVmStore';
import { useFleetStore } from './fleetStore';
import { useHostsStore } from './hostsStore';
import { useUiStore } from './uiStore';

export interface CreateVmActions {
  /** Opens the form on a connected host (the one selected, else the first) and loads its limits. */
  openCreateForm(): void;
  closeCreateForm(): void;
  /** Another host picked in the form: its choices and limits are loaded. */
  pickCreateHost(hostId: string): Promise<void>;
  /** Re-reads the chosen host's free memory and disk, images and drivers. */
  loadCreateChoices(): Promise<void>;
  /** A kind picked: sizes and image left at the old kind's defaults follow the new kind. */
  pickCreateKind(kind: CreateVmDraft['kind']): void;
  /**
   * Checks the draft, then `vm.create`: the new row comes in by the daemon's `vm.created` event while the call
   * runs. Success closes the form; a refusal stays in it, with everything typed. Resolves to the VM or null.
   */
  submitCreate(): Promise<Vm | null>;
}

const store = useCreateVmStore.getState;

/** Connected hosts, in the hosts view's order. */
export function connectedHosts(): { id: string; name: string }[] {
  const { hosts, statuses } = useHostsStore.getState();
  return hosts.filter((h) => statuses[h.id]?.state === 'connected').map((h) => ({ id: h.id, name: h.name }));
}

/** Names of the VMs a host has now, as the fleet shows them. */
export function vmNamesOn(hostId: string): string[] {
  return Object.values(useFleetStore.getState().vms)
    .filter((v) => v.hostId === hostId)
    .map((v) => v.vm.name);
}

export function createVmActions(client: AppClient, onCreated: (hostId: string, vm: Vm) => void): CreateVmActions {
  // A late answer for a host no longer chosen is kept (for when it is picked again) but never shown as current.
  const load = async (hostId: string): Promise<void> => {
    useCreateVmStore.setState({ loading: true, loadError: null });
    try {
      const [info, images] = await Promise.all([
        daemonCall(client, hostId, 'daemon.info', {}),
        daemonCall(client, hostId, 'image.list', {}),
      ]);
      const hostName = useHostsStore.getState().hosts.find((h) => h.id === hostId)?.name ?? hostId;
      useCreateVmStore.setState((s) => {
        const choices = { ...s.choices, [hostId]: { hostName, info, images } };
        if (s.draft.hostId !== hostId) return { choices };
        // The image defaults to the kind's own once the host's images are known, unless one was picked.
        const image = s.draft.image === '' ? defaultImage(s.draft.kind, images) : s.draft.image;
        return { choices, loading: false, draft: { ...s.draft, image } };
      });
    } catch (err) {
      if (store().draft.hostId === hostId) {
        useCreateVmStore.setState({ loading: false, loadError: toAppError(err) });
      }
    }
  };

  return {
    openCreateForm() {
      const connected = connectedHosts();
      const { selectedHostId } = useHostsStore.getState();
      const current = store().draft.hostId;
      const hostId = connected.some((h) => h.id === current)
        ? current
        : (connected.find((h) => h.id === selectedHostId) ?? connected[0])?.id;
      if (hostId === undefined) {
        useUiStore.getState().toast('Connect a host first: VMs are created on a connected host.', 'error');
        return;
      }
      useCreateVmStore.setState((s) => ({
        open: true,
        error: null,
        draft: { ...s.draft, hostId },
      }));
      void load(hostId);
    },
    closeCreateForm() {
      useCreateVmStore.setState({ open: false });
    },
    async pickCreateHost(hostId) {
      useCreateVmStore.setState((s) => ({ draft: { ...s.draft, hostId, image: '' }, error: null }));
      await load(hostId);
    },
    async loadCreateChoices() {
      const { hostId } = store().draft;
      if (hostId !== '') await load(hostId);
    },
    pickCreateKind(kind) {
      const s = store();
      const images = s.choices[s.draft.hostId]?.images ?? [];
      useCreateVmStore.setState({ draft: withKind(s.draft, kind, images), touched: { ...s.touched, kind: true } });
    },
    async submitCreate() {
      const s = store();
      if (s.submitting) return null;
      const choices = s.choices[s.draft.hostId] ?? null;
      const errors = validateDraft(s.draft, choices, vmNamesOn(s.draft.hostId));
      useCreateVmStore.setState({ submitted: true, error: null });
      if (Object.keys(errors).length > 0) return null;
      const { draft } = s;
      useCreateVmStore.setState({ submitting: true });
      try {
        const vm = await daemonCall(client, draft.hostId, 'vm.create', createParams(draft));
        onCreated(draft.hostId, vm);
        // Done: the next VM starts from this one's choices, without its name.
        useCreateVmStore.setState({
          open: false,
          submitting: false,
          submitted: false,
          touched: {},
          draft: { ...draft, name: '' },
        });
        useUiStore.getState().toast(`${vm.name}: created (${vm.state})`);
        return vm;
      } catch (err) {
        useCreateVmStore.setState({ submitting: false, error: toAppError(err) });
        // The host's figures may have moved (memory taken, a name used): the form shows them fresh.
        void load(draft.hostId);
        return null;
      }
    },
  };
}
