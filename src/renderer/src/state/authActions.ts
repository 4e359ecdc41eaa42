import { FiredeckError } from '../../../shared/errors';
import type { AuthMode, AuthSession } from '../../../shared/protocol/auth';
import type { ProviderName } from '../../../shared/protocol/providers';
import type { AppClient } from '../api/appClient';
import { daemonCall } from '../api/daemonCall';
import { providerLabel } from '../features/auth/authModel';
import type { DesktopNotifier } from '../features/auth/notify';
import { sessionKey, useAuthStore } from './authStore';
import { useHostsStore } from './hostsStore';
import { useUiStore } from './uiStore';

/** How many sessions one auth.list page brings. */
export const HISTORY_PAGE = 100;

export interface AuthActions {
  /** The newest page of a host's sessions (on connect, and when the page's link came back). */
  refresh(hostId: string): Promise<void>;
  refreshConnected(): Promise<void>;
  /** The next page of older sessions (auth.list `before` the oldest known). */
  loadOlder(hostId: string): Promise<void>;
  /** Fetches one session the store does not know yet (a link to it). */
  load(hostId: string, id: string): Promise<void>;
  /**
   * Starts a login and opens its session view; false (with a toast) when the daemon refused. `headless`: the
   * login runs in the CLI VM and shows a link and a code (providers that offer one).
   */
  connect(hostId: string, user: string, provider: ProviderName, mode?: AuthMode): Promise<boolean>;
  /** Pastes a code back into a headless login; false (with a toast) when the daemon refused it. */
  submitCode(hostId: string, id: string, code: string): Promise<boolean>;
  cancel(hostId: string, id: string): Promise<void>;
  /** Starts a new session like the ended one and opens it. */
  retry(hostId: string, id: string): Promise<void>;
}

function errorText(err: unknown): string {
  const e = FiredeckError.from(err);
  return e.hint ? `${e.message} (${e.hint})` : e.message;
}

/** How much of a failed session's reason a toast or desktop notification carries; the session view has it all. */
export const NOTICE_REASON_MAX = 140;

/**
 * The first line of `text`, cut at a word near `max` characters with an ellipsis: a CLI's error may be many
 * lines (its own words, a stack), which a toast or a desktop notification should not repeat whole.
 */
export function firstWords(text: string, max = NOTICE_REASON_MAX): string {
  const line = (text.split(/\r?\n/).find((l) => l.trim() !== '') ?? '').trim();
  const more = line !== text.trim();
  if (line.length <= max) return more ? `${line} …` : line;
  const cut = line.slice(0, max);
  const space = cut.lastIndexOf(' ');
  return `${(space > max / 2 ? cut.slice(0, space) : cut).trimEnd()}…`;
}

/** Toast plus desktop notification when a session the app watched moves into completed or failed. */
export function endNotice(prev: AuthSession | undefined, next: AuthSession): { title: string; body: string } | null {
  if (prev?.state === next.state) return null;
  const who = `${next.user} · ${providerLabel(next.provider)}`;
  if (next.state === 'completed') {
    const vm = next.result?.cliVmName ?? next.cliVmName ?? 'the CLI VM';
    return { title: 'Login completed', body: `${who}: written to ${vm} and verified` };
  }
  if (next.state === 'failed' || next.state === 'timeout') {
    return {
      title: next.state === 'failed' ? 'Login failed' : 'Login timed out',
      body: `${who}: ${next.error ? firstWords(next.error.message) : next.state}`,
    };
  }
  return null;
}

export function createAuthActions(client: AppClient, notifier: DesktopNotifier): AuthActions {
  const store = useAuthStore.getState;
  const ui = useUiStore.getState;
  const toastError = (what: string, err: unknown): void => ui().toast(`${what}: ${errorText(err)}`, 'error');

  const refresh = async (hostId: string): Promise<void> => {
    const list = await daemonCall(client, hostId, 'auth.list', { limit: HISTORY_PAGE });
    store().apply(hostId, list);
    if (store().more[hostId] === undefined || list.length < HISTORY_PAGE) {
      store().setMore(hostId, list.length === HISTORY_PAGE);
    }
  };

  const onSession = (hostId: string, session: AuthSession): void => {
    const prev = store().sessions[sessionKey(hostId, session.id)]?.session;
    store().apply(hostId, [session]);
    // An older copy than the one known (an answer overtaken by events) changes nothing and notifies no one.
    if (store().sessions[sessionKey(hostId, session.id)]?.session !== session) return;
    const notice = endNotice(prev, session);
    if (!notice) return;
    ui().toast(`${notice.title}: ${notice.body}`, session.state === 'completed' ? 'ok' : 'error');
    notifier.show(notice.title, notice.body);
  };

  client.onEvent((e) => {
    if (e.type === 'daemon.event' && e.envelope.event.type === 'auth.session') {
      onSession(e.hostId, e.envelope.event.session);
    }
  });

  useHostsStore.subscribe((next, prev) => {
    for (const [hostId, status] of Object.entries(next.statuses)) {
      const before = prev.statuses[hostId]?.state;
      if (status.state === 'connected' && before !== 'connected') {
        // A daemon without auth sessions (older firedeckd) just shows none.
        refresh(hostId).catch(() => undefined);
      }
      if ((status.state === 'disconnected' || status.state === 'failed') && before !== status.state) {
        store().dropHost(hostId);
      }
    }
  });

  const open = (hostId: string, session: AuthSession): void => {
    onSession(hostId, session);
    ui().show({ name: 'auth', hostId, sessionId: session.id });
  };

  return {
    refresh,
    async refreshConnected() {
      const connected = Object.values(useHostsStore.getState().statuses).filter((s) => s.state === 'connected');
      await Promise.all(connected.map((s) => refresh(s.hostId).catch(() => undefined)));
    },
    async loadOlder(hostId) {
      const mine = Object.values(store().sessions)
        .filter((v) => v.hostId === hostId)
        .map((v) => v.session)
        .sort((a, b) => a.createdAt.localeCompare(b.createdAt) || a.id.localeCompare(b.id));
      const oldest = mine[0];
      try {
        const list = await daemonCall(client, hostId, 'auth.list', {
          limit: HISTORY_PAGE,
          ...(oldest ? { before: oldest.id } : {}),
        });
        store().apply(hostId, list);
        store().setMore(hostId, list.length === HISTORY_PAGE);
      } catch (err) {
        toastError('Could not load older sessions', err);
      }
    },
    async load(hostId, id) {
      try {
        store().apply(hostId, [await daemonCall(client, hostId, 'auth.get', { id })]);
      } catch (err) {
        toastError('Could not load the session', err);
      }
    },
    async connect(hostId, user, provider, mode) {
      void notifier.askOnce();
      try {
        const params = mode === 'headless' ? { user, provider, mode } : { user, provider };
        open(hostId, await daemonCall(client, hostId, 'auth.start', params));
        return true;
      } catch (err) {
        toastError(`Connect ${providerLabel(provider)} for ${user}`, err);
        return false;
      }
    },
    async submitCode(hostId, id, code) {
      try {
        onSession(hostId, await daemonCall(client, hostId, 'auth.submitCode', { id, code }));
        return true;
      } catch (err) {
        toastError('Submit the code', err);
        return false;
      }
    },
    async cancel(hostId, id) {
      try {
        onSession(hostId, await daemonCall(client, hostId, 'auth.cancel', { id }));
      } catch (err) {
        toastError('Cancel', err);
      }
    },
    async retry(hostId, id) {
      try {
        open(hostId, await daemonCall(client, hostId, 'auth.retry', { id }));
      } catch (err) {
        toastError('Retry', err);
      }
    },
  };
}
