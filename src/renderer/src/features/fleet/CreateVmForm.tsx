import { useMemo, useRef } from 'react';
import { VmKind } from '../../../../shared/protocol/vm';
import { useActions } from '../../state/actionsContext';
import {
  fieldOfError,
  hostLimits,
  imageChoices,
  validateDraft,
  type CreateVmDraft,
  type DraftErrors,
  type DraftField,
  type HostLimits,
} from '../../state/createVmDraft';
import { useCreateVmStore } from '../../state/createVmStore';
import { useFleetStore } from '../../state/fleetStore';
import { useHostsStore } from '../../state/hostsStore';

const GIB = 1024;

function mib(n: number): string {
  return n >= 10 * GIB ? `${(n / GIB).toFixed(1)} GiB` : `${n} MiB`;
}

/**
 * The create-VM panel above the fleet table: host (when several are connected), name, kind, owner, image,
 * sizes and driver, with the host's free memory and disk and the image's minimum disk shown and checked
 * before anything is sent. Enter submits, Escape closes; a refusal from the daemon stays in the form.
 */
export function CreateVmForm(): React.JSX.Element {
  const { fleet } = useActions();
  const form = useRef<HTMLFormElement>(null);
  const { draft, choices, loading, loadError, touched, submitted, submitting, error, edit } = useCreateVmStore();
  const hosts = useHostsStore((s) => s.hosts);
  const statuses = useHostsStore((s) => s.statuses);
  const vms = useFleetStore((s) => s.vms);
  const connected = hosts.filter((h) => statuses[h.id]?.state === 'connected');
  const hostChoices = choices[draft.hostId] ?? null;
  const vmNames = useMemo(
    () =>
      Object.values(vms)
        .filter((v) => v.hostId === draft.hostId)
        .map((v) => v.vm.name),
    [vms, draft.hostId],
  );
  // While the create runs, its own new row must not make its name look taken.
  const errors = validateDraft(draft, hostChoices, submitting ? [] : vmNames);
  const limits = hostChoices ? hostLimits(hostChoices, draft.image) : null;
  const daemonField = error ? fieldOfError(error.kind) : null;
  const shown = (field: DraftField): string | undefined => {
    const own = submitted || touched[field === 'host' ? 'hostId' : field] ? errors[field] : undefined;
    if (own !== undefined) return own;
    if (daemonField === field && error) return error.hint ?? error.message;
    return undefined;
  };
  const many = connected.length > 1;

  const submit = async (e: React.FormEvent): Promise<void> => {
    e.preventDefault();
    const vm = await fleet.submitCreate();
    if (vm) return;
    // The first field to fix takes the focus: the checks' first (they run in the form's order), else the one
    // the daemon's refusal is about.
    const state = useCreateVmStore.getState();
    const first =
      (Object.keys(validateDraft(state.draft, state.choices[state.draft.hostId] ?? null, vmNames))[0] as
        | DraftField
        | undefined) ?? (state.error ? fieldOfError(state.error.kind) : null);
    if (first) form.current?.querySelector<HTMLElement>(`[name="${first}"]`)?.focus();
  };
  const onKeyDown = (e: React.KeyboardEvent<HTMLFormElement>): void => {
    if (e.key === 'Escape') {
      e.preventDefault();
      e.stopPropagation();
      fleet.closeCreateForm();
    } else if (e.key === 'Enter' && e.target instanceof HTMLSelectElement) {
      // Inputs submit on Enter by themselves; a select would not.
      e.preventDefault();
      form.current?.requestSubmit();
    }
  };

  return (
    <form
      ref={form}
      className="create-vm"
      aria-label="Create VM"
      onSubmit={(e) => void submit(e)}
      onKeyDown={onKeyDown}
      noValidate
    >
      <h3>
        Create VM
        {!many && hostChoices ? <span className="muted"> on {hostChoices.hostName}</span> : null}
      </h3>
      {many ? (
        <Field label="Host" field="host" error={shown('host')}>
          <select
            name="host"
            autoFocus
            value={draft.hostId}
            onChange={(e) => void fleet.pickCreateHost(e.target.value)}
            {...invalid('host', shown('host'))}
          >
            {connected.map((h) => (
              <option key={h.id} value={h.id}>
                {h.name}
              </option>
            ))}
          </select>
        </Field>
      ) : null}
      <Field label="Name" field="name" error={shown('name')}>
        <input
          name="name"
          autoFocus={!many}
          value={draft.name}
          onChange={(e) => edit({ name: e.target.value })}
          placeholder="dev-alice"
          autoComplete="off"
          {...invalid('name', shown('name'))}
        />
      </Field>
      <Field label="Kind" field="kind" error={undefined}>
        <select name="kind" value={draft.kind} onChange={(e) => fleet.pickCreateKind(VmKind.parse(e.target.value))}>
          {VmKind.options.map((k) => (
            <option key={k} value={k}>
              {k}
            </option>
          ))}
        </select>
      </Field>
      <Field label="Owner" field="owner" error={shown('owner')}>
        <input
          name="owner"
          value={draft.owner}
          onChange={(e) => edit({ owner: e.target.value })}
          placeholder="alice@example.org"
          autoComplete="off"
          {...invalid('owner', shown('owner'))}
        />
      </Field>
      <Field
        label="Image"
        field="image"
        error={shown('image')}
        note={limits?.imageMinDiskMib != null ? `needs ≥ ${limits.imageMinDiskMib} MiB disk` : undefined}
      >
        <select
          name="image"
          value={draft.image}
          onChange={(e) => edit({ image: e.target.value })}
          {...invalid('image', shown('image'))}
        >
          {draft.image === '' ? <option value="">{hostChoices ? 'no image' : 'loading…'}</option> : null}
          {imageChoices(hostChoices?.images ?? []).map((c) => (
            <option key={c.value} value={c.value}>
              {c.label}
            </option>
          ))}
        </select>
      </Field>
      <Field label="vCPUs" field="vcpus" error={shown('vcpus')}>
        <input
          name="vcpus"
          inputMode="numeric"
          size={4}
          value={draft.vcpus}
          onChange={(e) => edit({ vcpus: e.target.value })}
          {...invalid('vcpus', shown('vcpus'))}
        />
      </Field>
      <Field
        label="Memory (MiB)"
        field="memoryMib"
        error={shown('memoryMib')}
        note={limits?.memoryAvailableMib != null ? `${limits.memoryAvailableMib} MiB free` : undefined}
      >
        <input
          name="memoryMib"
          inputMode="numeric"
          size={8}
          value={draft.memoryMib}
          onChange={(e) => edit({ memoryMib: e.target.value })}
          {...invalid('memoryMib', shown('memoryMib'))}
        />
      </Field>
      <Field label="Disk (MiB)" field="diskMib" error={shown('diskMib')} note={diskNote(limits)}>
        <input
          name="diskMib"
          inputMode="numeric"
          size={8}
          value={draft.diskMib}
          onChange={(e) => edit({ diskMib: e.target.value })}
          {...invalid('diskMib', shown('diskMib'))}
        />
      </Field>
      <Field label="Driver" field="driver" error={shown('driver')}>
        <select
          name="driver"
          value={draft.driver}
          onChange={(e) => edit({ driver: e.target.value as CreateVmDraft['driver'] })}
          {...invalid('driver', shown('driver'))}
        >
          <option value="">{limits?.defaultDriver ? `host default (${limits.defaultDriver})` : 'host default'}</option>
          {(hostChoices?.info.drivers ?? []).map((d) => (
            <option key={d.name} value={d.name} disabled={!d.available}>
              {d.name}
              {d.available ? (d.accel ? ` (${d.accel})` : '') : ' (unavailable)'}
            </option>
          ))}
        </select>
      </Field>
      <Limits limits={limits} loading={loading} hostName={hostChoices?.hostName ?? null} />
      {loadError ? (
        <p className="form-error" role="alert" data-testid="create-vm-load-error">
          Could not read the host&apos;s limits: {loadError.message}
          {loadError.hint ? ` ${loadError.hint}` : ''}
        </p>
      ) : null}
      {error ? (
        <p className="form-error" role="alert" data-testid="create-vm-error">
          {error.message}
          {error.hint ? <span className="hint"> {error.hint}</span> : null}
        </p>
      ) : null}
      <div className="form-buttons">
        <button type="submit" className="primary" disabled={submitting}>
          {submitting ? 'Creating…' : 'Create'}
        </button>
        <button type="button" onClick={() => fleet.closeCreateForm()}>
          Cancel
        </button>
        <button type="button" onClick={() => void fleet.loadCreateChoices()} title="Read the host's limits again">
          Refresh limits
        </button>
        {submitted && Object.keys(errors).length > 0 ? (
          <span className="muted" data-testid="create-vm-problems">
            {problemCount(errors)} to fix before creating
          </span>
        ) : null}
      </div>
    </form>
  );
}

function problemCount(errors: DraftErrors): string {
  const n = Object.keys(errors).length;
  return n === 1 ? '1 field' : `${n} fields`;
}

function invalid(
  field: DraftField,
  error: string | undefined,
): { 'aria-invalid': boolean; 'aria-describedby'?: string } {
  return error === undefined
    ? { 'aria-invalid': false }
    : { 'aria-invalid': true, 'aria-describedby': `create-vm-${field}-error` };
}

function diskNote(limits: HostLimits | null): string | undefined {
  if (!limits) return undefined;
  const parts: string[] = [];
  if (limits.imageMinDiskMib !== null) parts.push(`≥ ${limits.imageMinDiskMib}`);
  if (limits.diskFreeMib !== null) parts.push(`${mib(limits.diskFreeMib)} free`);
  return parts.length > 0 ? parts.join(' · ') : undefined;
}

function Field(props: {
  label: string;
  field: DraftField;
  error: string | undefined;
  note?: string | undefined;
  children: React.ReactNode;
}): React.JSX.Element {
  return (
    <label className={props.error ? 'invalid' : undefined}>
      {props.label}
      {props.children}
      {props.error !== undefined ? (
        <span
          className="field-error"
          id={`create-vm-${props.field}-error`}
          data-testid={`create-vm-${props.field}-error`}
        >
          {props.error}
        </span>
      ) : props.note !== undefined ? (
        <span className="field-note">{props.note}</span>
      ) : null}
    </label>
  );
}

function Limits(props: { limits: HostLimits | null; loading: boolean; hostName: string | null }): React.JSX.Element {
  const { limits } = props;
  if (!limits) {
    return (
      <p className="limits muted" data-testid="create-vm-limits">
        {props.loading ? "Reading the host's limits…" : 'No limits known yet.'}
      </p>
    );
  }
  const parts: string[] = [];
  if (limits.memoryAvailableMib !== null && limits.memoryTotalMib !== null) {
    parts.push(`Memory: ${mib(limits.memoryAvailableMib)} free of ${mib(limits.memoryTotalMib)}`);
  }
  if (limits.diskFreeMib !== null && limits.diskTotalMib !== null) {
    parts.push(`Disk: ${mib(limits.diskFreeMib)} free of ${mib(limits.diskTotalMib)} in ${limits.diskPath}`);
  }
  if (parts.length === 0) parts.push('This daemon does not report its free memory and disk (update firedeckd)');
  parts.push(`Drivers: ${limits.drivers.length > 0 ? limits.drivers.join(', ') : 'none usable'}`);
  return (
    <p className="limits" data-testid="create-vm-limits">
      {props.hostName}: {parts.join(' · ')}
      {props.loading ? <span className="muted"> (refreshing…)</span> : null}
    </p>
  );
}
