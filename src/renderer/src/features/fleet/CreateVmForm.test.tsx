import { renderToStaticMarkup } from 'react-dom/server';
import { beforeEach, describe, expect, it } from 'vitest';
import { ActionsContext, type Actions } from '../../state/actionsContext';
import { emptyDraft } from '../../state/createVmDraft';
import { choices, info } from '../../state/createVmFixtures';
import { useCreateVmStore } from '../../state/createVmStore';
import { useFleetStore } from '../../state/fleetStore';
import { useHostsStore } from '../../state/hostsStore';
import { CreateVmForm } from './CreateVmForm';

/** The form rendered to HTML (no DOM, no effects): what it shows for given store contents. */
function render(): string {
  for (const store of [useCreateVmStore, useHostsStore, useFleetStore])
    Object.assign(store.getInitialState(), store.getState());
  return renderToStaticMarkup(
    <ActionsContext.Provider value={{} as Actions}>
      <CreateVmForm />
    </ActionsContext.Provider>,
  )
    .replace(/&#x27;/g, "'")
    .replace(/&quot;/g, '"')
    .replace(/&amp;/g, '&');
}

/** The text of the element with this test id (its tags stripped), or null. */
function textOf(html: string, testId: string): string | null {
  const m = new RegExp(`data-testid="${testId}"[^>]*>(.*?)</(p|span)>`).exec(html);
  return m ? m[1]!.replace(/<[^>]+>/g, '') : null;
}

const host = (id: string, name: string) =>
  ({ id, name, kind: 'ssh', address: name, port: 22, user: 'root', auth: null, hostKeyFingerprint: null }) as const;
const connected = (hostId: string) =>
  ({ hostId, state: 'connected', info: null, error: null, attempt: 0, nextAttemptAt: null }) as const;

const typed = { ...emptyDraft('h1'), name: 'dev-a', owner: 'alice@example.org', image: 'test' };

beforeEach(() => {
  useHostsStore.setState({ hosts: [host('h1', 'rig')], selectedHostId: 'h1', statuses: { h1: connected('h1') } });
  useFleetStore.setState({ vms: {} });
  useCreateVmStore.setState({
    open: true,
    draft: typed,
    choices: { h1: choices() },
    loading: false,
    loadError: null,
    touched: {},
    submitted: false,
    submitting: false,
    error: null,
  });
});

describe('the create VM form', () => {
  it("shows the host's free memory and disk, its drivers and the image's minimum disk", () => {
    const html = render();
    expect(textOf(html, 'create-vm-limits')).toBe(
      'rig: Memory: 3000 MiB free of 8192 MiB · Disk: 19.5 GiB free of 97.7 GiB in /var/lib/firedeck · Drivers: qemu',
    );
    expect(html).toContain('needs ≥ 1024 MiB disk');
    expect(html).toContain('3000 MiB free');
    // One host: named in the title, no host picker; the name field takes the focus.
    expect(html).toContain('Create VM<span class="muted"> on rig</span>');
    expect(html).not.toContain('name="host"');
    expect(html).toMatch(/<input autofocus=""[^>]*name="name"/);
    // Pinned versions are offered; an unusable driver is shown, disabled.
    expect(html).toContain('<option value="test@v1">test@v1</option>');
    expect(html).toContain('<option value="firecracker" disabled="">firecracker (unavailable)</option>');
    expect(html).toContain('<option value="" selected="">host default (qemu)</option>');
  });

  it('shows each error next to its field once touched or submitted, with the fix', () => {
    useCreateVmStore.setState({ draft: { ...typed, memoryMib: '5000', diskMib: '100' }, touched: { memoryMib: true } });
    let html = render();
    expect(textOf(html, 'create-vm-memoryMib-error')).toBe('Only 3000 MiB free on rig: ask for at most 3000 MiB.');
    expect(html).toMatch(/aria-invalid="true" aria-describedby="create-vm-memoryMib-error" name="memoryMib"/);
    // Not touched yet: not shown.
    expect(textOf(html, 'create-vm-diskMib-error')).toBeNull();
    useCreateVmStore.setState({ submitted: true });
    html = render();
    expect(textOf(html, 'create-vm-diskMib-error')).toBe('At least 256 MiB: type 256 or more.');
    expect(textOf(html, 'create-vm-problems')).toBe('2 fields to fix before creating');
  });

  it("shows the daemon's refusal at the top and beside its field, with everything typed still there", () => {
    useCreateVmStore.setState({
      error: { kind: 'conflict', message: 'A VM named dev-a already exists', hint: 'Pick another name.' },
    });
    const html = render();
    expect(textOf(html, 'create-vm-error')).toBe('A VM named dev-a already exists Pick another name.');
    expect(textOf(html, 'create-vm-name-error')).toBe('Pick another name.');
    expect(html).toContain('value="dev-a"');
    expect(html).toContain('value="alice@example.org"');
  });

  it('does not call the name taken by the VM its own create brought into the fleet while it runs', () => {
    const row = { hostId: 'h1', vm: { id: 'vm-0000abcd', name: 'dev-a', state: 'creating' } };
    useFleetStore.setState({ vms: { 'h1/vm-0000abcd': row as never } });
    useCreateVmStore.setState({ submitted: true, submitting: true });
    let html = render();
    expect(textOf(html, 'create-vm-name-error')).toBeNull();
    expect(html).toContain('Creating…');
    // Once it is done, the name is taken.
    useCreateVmStore.setState({ submitting: false });
    html = render();
    expect(textOf(html, 'create-vm-name-error')).toBe('rig already has a VM named dev-a: pick another name.');
  });

  it('asks which host when several are connected, and says when a daemon reports no limits', () => {
    useHostsStore.setState({
      hosts: [host('h1', 'rig'), host('h2', 'second')],
      statuses: { h1: connected('h1'), h2: connected('h2') },
    });
    useCreateVmStore.setState({ choices: { h1: choices({ info: { ...info(), resources: undefined } }) } });
    const html = render();
    expect(html).toMatch(/<select name="host" autofocus=""/);
    expect(html).toContain('<option value="h2">second</option>');
    expect(html).not.toMatch(/<input autofocus=""[^>]*name="name"/);
    expect(textOf(html, 'create-vm-limits')).toBe(
      'rig: This daemon does not report its free memory and disk (update firedeckd) · Drivers: qemu',
    );
  });
});
