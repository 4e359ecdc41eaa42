import { useMemo, useState } from 'react';
import { OwnerId } from '../../../../shared/protocol/common';
import type { ProviderName } from '../../../../shared/protocol/providers';
import { useActions } from '../../state/actionsContext';
import { sessionsOf, useAuthStore } from '../../state/authStore';
import { useFleetStore } from '../../state/fleetStore';
import { useUiStore } from '../../state/uiStore';
import {
  PROVIDER_ORDER,
  hasHeadlessLogin,
  isSelftest,
  providerLabel,
  providerStatus,
  stateText,
  takesPastedCode,
  usersOf,
} from './authModel';
import { HostPicker, useAuthHost } from './useAuthHost';

/** The users a host serves and, per provider, whether their CLI is logged in; Connect starts a login. */
export function UsersView(): React.JSX.Element {
  const { hostId, connected, choose } = useAuthHost();
  if (!hostId) {
    return (
      <section className="users-view">
        <div className="toolbar">
          <h2>Users</h2>
        </div>
        <p className="empty">Connect to a host first: its users and their CLIs show here.</p>
      </section>
    );
  }
  return <UsersOfHost hostId={hostId} connected={connected} choose={choose} />;
}

function UsersOfHost(props: {
  hostId: string;
  connected: { id: string; name: string }[];
  choose(hostId: string): void;
}): React.JSX.Element {
  const { hostId } = props;
  const vms = useFleetStore((s) => s.vms);
  const all = useAuthStore((s) => s.sessions);
  const added = useAuthStore((s) => s.addedUsers[hostId]);
  const addUser = useAuthStore((s) => s.addUser);
  const sessions = useMemo(() => sessionsOf(all, hostId), [all, hostId]);
  const users = useMemo(
    () =>
      usersOf(
        Object.values(vms)
          .filter((v) => v.hostId === hostId)
          .map((v) => v.vm),
        sessions,
        added ?? [],
      ),
    [vms, sessions, added, hostId],
  );
  const [newUser, setNewUser] = useState('');
  const [newUserError, setNewUserError] = useState<string | null>(null);
  const add = (e: React.FormEvent): void => {
    e.preventDefault();
    const parsed = OwnerId.safeParse(newUser.trim());
    if (!parsed.success) {
      setNewUserError(parsed.error.issues[0]?.message ?? 'not a user name');
      return;
    }
    setNewUserError(null);
    addUser(hostId, parsed.data);
    setNewUser('');
  };

  return (
    <section className="users-view">
      <div className="toolbar">
        <h2>Users</h2>
        <HostPicker hostId={hostId} connected={props.connected} choose={props.choose} />
        <form className="new-user" onSubmit={add}>
          <input
            value={newUser}
            onChange={(e) => setNewUser(e.target.value)}
            placeholder="New user (e.g. ada@example.org)"
            aria-label="New user"
          />
          <button type="submit" disabled={newUser.trim() === ''}>
            Add user
          </button>
        </form>
        {newUserError ? (
          <span className="row-error" role="alert">
            {newUserError}
          </span>
        ) : null}
      </div>
      {users.length === 0 ? (
        <p className="empty">No users yet: this host runs no CLI VM and no login was made. Add a user above.</p>
      ) : (
        <table className="users-table" data-testid="users-table">
          <thead>
            <tr>
              <th>User</th>
              {PROVIDER_ORDER.map((p) => (
                <th key={p} className={isSelftest(p) ? 'selftest' : undefined}>
                  {providerLabel(p)}
                  {isSelftest(p) ? <span className="muted"> (self-test)</span> : null}
                </th>
              ))}
            </tr>
          </thead>
          <tbody>
            {users.map((user) => (
              <tr key={user} data-testid={`user-row-${user}`}>
                <th scope="row">{user}</th>
                {PROVIDER_ORDER.map((p) => (
                  <ProviderCell key={p} hostId={hostId} user={user} provider={p} sessions={sessions} />
                ))}
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}

function ProviderCell(props: {
  hostId: string;
  user: string;
  provider: ProviderName;
  sessions: Parameters<typeof providerStatus>[0];
}): React.JSX.Element {
  const { auth } = useActions();
  const show = useUiStore((s) => s.show);
  const [starting, setStarting] = useState(false);
  const status = providerStatus(props.sessions, props.user, props.provider);
  const openSession = (id: string): void => show({ name: 'auth', hostId: props.hostId, sessionId: id });
  const live = status.kind === 'in_progress';
  let body: React.JSX.Element;
  switch (status.kind) {
    case 'not_connected':
      body = <span className="muted">not connected</span>;
      break;
    case 'connected':
      body = (
        <button type="button" className="link" onClick={() => openSession(status.session.id)}>
          <span className="pill auth-completed">connected</span> {new Date(status.at).toLocaleString()} · CLI VM{' '}
          {status.cliVmName}
        </button>
      );
      break;
    case 'in_progress':
      body = (
        <button type="button" className="link" onClick={() => openSession(status.session.id)}>
          <span className="pill auth-live">in progress</span> {stateText(status.session.state, status.session.mode)}
        </button>
      );
      break;
    case 'failed':
      body = (
        <span>
          <button type="button" className="link" onClick={() => openSession(status.session.id)}>
            <span className="pill auth-failed">{stateText(status.session.state, status.session.mode)}</span>{' '}
            {status.session.error?.message ?? ''}
          </button>
          {status.session.error?.hint ? <span className="hint">{status.session.error.hint}</span> : null}
        </span>
      );
      break;
  }
  return (
    <td data-testid={`provider-${props.user}-${props.provider}`} data-state={status.kind}>
      <div className="provider-cell">
        {body}
        <button
          type="button"
          disabled={live || starting}
          title={live ? 'A login for this user and provider is running: open it instead' : undefined}
          onClick={() => {
            setStarting(true);
            void auth.connect(props.hostId, props.user, props.provider).finally(() => setStarting(false));
          }}
        >
          Connect
        </button>
        {hasHeadlessLogin(props.provider) ? (
          <button
            type="button"
            data-testid={`headless-${props.user}-${props.provider}`}
            disabled={live || starting}
            title={
              takesPastedCode(props.provider)
                ? 'Log in without a browser VM: the CLI VM shows a link, the code from its page is pasted back here'
                : 'Log in without a browser VM: the CLI VM shows a link and a one-time code to enter there'
            }
            onClick={() => {
              setStarting(true);
              void auth.connect(props.hostId, props.user, props.provider, 'headless').finally(() => setStarting(false));
            }}
          >
            Link &amp; code
          </button>
        ) : null}
      </div>
    </td>
  );
}
