import { useState } from 'react';
import type { Host } from '../../../../shared/app/contract';
import { useActions } from '../../state/actionsContext';
import { confirmAction } from '../../state/confirmStore';

/**
 * Adds a host, or edits one when `editing` is set (the parent remounts it per host via `key`). Form state is
 * UI state: it stays in the component until submitted.
 */
export function AddHostForm(props: { editing?: Host; onDone?: () => void }): React.JSX.Element {
  const { hosts } = useActions();
  const editing = props.editing;
  const [name, setName] = useState(editing?.name ?? '');
  const [address, setAddress] = useState(editing?.address ?? '');
  const [port, setPort] = useState(String(editing?.port ?? 22));
  const [user, setUser] = useState(editing?.user ?? 'root');
  const [authType, setAuthType] = useState<'agent' | 'keyFile'>(editing?.auth?.type ?? 'keyFile');
  const [keyPath, setKeyPath] = useState(editing?.auth?.type === 'keyFile' ? editing.auth.path : '');
  const [busy, setBusy] = useState(false);

  const submit = async (e: React.FormEvent): Promise<void> => {
    e.preventDefault();
    setBusy(true);
    const input = {
      name: name.trim() || address.trim(),
      address: address.trim(),
      port: Number(port),
      user: user.trim(),
      auth: authType === 'agent' ? ({ type: 'agent' } as const) : ({ type: 'keyFile', path: keyPath.trim() } as const),
    };
    const endpointChanged = editing !== undefined && (editing.address !== input.address || editing.port !== input.port);
    if (
      endpointChanged &&
      !(await confirmAction({
        title: `Change the address of ${editing.name}?`,
        detail:
          'The pinned host key belongs to the old address and port: it is forgotten, and the next connect asks again.',
        confirmLabel: 'Save',
      }))
    ) {
      setBusy(false);
      return;
    }
    const ok = editing ? await hosts.update(editing.id, input) : await hosts.add(input);
    setBusy(false);
    if (ok) {
      setName('');
      setAddress('');
      props.onDone?.();
    }
  };

  return (
    <form className="add-host" onSubmit={(e) => void submit(e)} aria-label={editing ? 'Edit host' : 'Add host'}>
      <h3>{editing ? `Edit ${editing.name}` : 'Add host'}</h3>
      <label>
        Name
        <input name="name" value={name} onChange={(e) => setName(e.target.value)} placeholder="vm-host-1" />
      </label>
      <label>
        Address
        <input
          name="address"
          value={address}
          onChange={(e) => setAddress(e.target.value)}
          required
          placeholder="10.0.0.5"
        />
      </label>
      <label>
        Port
        <input name="port" value={port} onChange={(e) => setPort(e.target.value)} inputMode="numeric" required />
      </label>
      <label>
        User
        <input name="user" value={user} onChange={(e) => setUser(e.target.value)} required />
      </label>
      <label>
        Key
        <select name="auth" value={authType} onChange={(e) => setAuthType(e.target.value as 'agent' | 'keyFile')}>
          <option value="keyFile">key file</option>
          <option value="agent">SSH agent</option>
        </select>
      </label>
      {authType === 'keyFile' ? (
        <label className="wide">
          Key file
          <input
            name="keyPath"
            value={keyPath}
            onChange={(e) => setKeyPath(e.target.value)}
            required
            placeholder="~/.ssh/id_ed25519"
          />
        </label>
      ) : null}
      <button type="submit" disabled={busy}>
        {editing ? 'Save' : 'Add host'}
      </button>
      {editing ? (
        <button type="button" onClick={props.onDone}>
          Cancel
        </button>
      ) : null}
    </form>
  );
}
