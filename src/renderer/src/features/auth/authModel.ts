import {
  AUTH_END_STATES,
  AuthSubmitCodeParams,
  isAuthSessionLive,
  type AuthMode,
  type AuthSession,
  type AuthSessionState,
} from '../../../../shared/protocol/auth';
import { PROVIDERS, type ProviderName } from '../../../../shared/protocol/providers';
import type { Vm } from '../../../../shared/protocol/vm';

/** The providers in the order the app shows them: the real CLIs first, the self-test last. */
export const PROVIDER_ORDER: readonly ProviderName[] = [
  ...(Object.keys(PROVIDERS) as ProviderName[]).filter((p) => p !== 'selftest'),
  'selftest',
];

export function providerLabel(p: ProviderName): string {
  return PROVIDERS[p].label;
}

export function isSelftest(p: ProviderName): boolean {
  return p === 'selftest';
}

/** The provider's CLI has a login that runs in the CLI VM itself, showing a link and a code (no browser VM). */
export function hasHeadlessLogin(p: ProviderName): boolean {
  return PROVIDERS[p].headless !== null;
}

/** A headless login waits for the code its provider's page shows, pasted back (else it shows a code to enter). */
export function takesPastedCode(p: ProviderName): boolean {
  const kind = PROVIDERS[p].headless?.kind;
  return kind === 'paste_code' || kind === 'print_token';
}

/** A state in words support staff understand. */
export const STATE_TEXT: Readonly<Record<AuthSessionState, string>> = {
  pending: 'starting',
  vm_created: 'browser VM booting',
  ready: 'browser VM ready',
  awaiting_user_auth: "waiting for the user's login",
  authenticating: 'credential captured, writing it to the CLI VM',
  completed: 'completed',
  failed: 'failed',
  timeout: 'timed out',
  cancelled: 'cancelled',
};

/** The same states for a headless login (no browser VM: the CLI runs in the CLI VM and writes there). */
const HEADLESS_TEXT: Partial<Record<AuthSessionState, string>> = {
  pending: 'starting the login in the CLI VM',
  awaiting_user_auth: 'waiting for the user to open the link',
  authenticating: 'checking the login in the CLI VM',
};

/** A session's state in words, for its mode. */
export function stateText(state: AuthSessionState, mode: AuthMode): string {
  return (mode === 'headless' ? HEADLESS_TEXT[state] : undefined) ?? STATE_TEXT[state];
}

/** The happy path, in order, for the timeline. */
export const HAPPY_PATH: readonly AuthSessionState[] = [
  'pending',
  'vm_created',
  'ready',
  'awaiting_user_auth',
  'authenticating',
  'completed',
];

const HEADLESS_PATH: readonly AuthSessionState[] = ['pending', 'awaiting_user_auth', 'authenticating', 'completed'];

export function happyPath(mode: AuthMode): readonly AuthSessionState[] {
  return mode === 'headless' ? HEADLESS_PATH : HAPPY_PATH;
}

/** A pasted code as the daemon takes it (auth.submitCode), trimmed; or why not, in words. */
export function checkPastedCode(text: string): { ok: true; code: string } | { ok: false; why: string } {
  const code = text.trim();
  if (code === '') return { ok: false, why: 'Paste the code the provider’s page showed.' };
  const parsed = AuthSubmitCodeParams.shape.code.safeParse(code);
  return parsed.success ? { ok: true, code } : { ok: false, why: parsed.error.issues[0]?.message ?? 'not a code' };
}

export function canCancel(state: AuthSessionState): boolean {
  return isAuthSessionLive(state) && state !== 'authenticating';
}

export function canRetry(state: AuthSessionState): boolean {
  return state === 'failed' || state === 'timeout' || state === 'cancelled';
}

/**
 * The users a host serves: the owners of its CLI VMs, the users its auth sessions were for, and users the
 * operator typed in ("New user") — each once, sorted.
 */
export function usersOf(vms: readonly Vm[], sessions: readonly AuthSession[], added: readonly string[] = []): string[] {
  const users = new Set<string>();
  for (const vm of vms) if (vm.kind === 'cli') users.add(vm.owner);
  for (const s of sessions) users.add(s.user);
  for (const u of added) users.add(u);
  return [...users].sort((a, b) => a.localeCompare(b));
}

export type ProviderStatus =
  | { kind: 'not_connected'; last: AuthSession | null }
  | { kind: 'connected'; session: AuthSession; at: string; cliVmName: string }
  | { kind: 'in_progress'; session: AuthSession }
  | { kind: 'failed'; session: AuthSession; connected: AuthSession | null };

/** Newest first, by creation time (ids break ties so the order is stable). */
export function newestFirst(a: AuthSession, b: AuthSession): number {
  return b.createdAt.localeCompare(a.createdAt) || b.id.localeCompare(a.id);
}

/**
 * Where one user's login to one provider stands, from that pair's sessions: a live session wins; else the newest
 * ended one says failed (failed or timed out) or, after a completed session, connected; a cancelled attempt
 * leaves the state before it standing.
 */
export function providerStatus(sessions: readonly AuthSession[], user: string, provider: ProviderName): ProviderStatus {
  const mine = sessions.filter((s) => s.user === user && s.provider === provider).sort(newestFirst);
  const live = mine.find((s) => isAuthSessionLive(s.state));
  if (live) return { kind: 'in_progress', session: live };
  const completed = mine.find((s) => s.state === 'completed' && s.result) ?? null;
  const decisive = mine.find((s) => s.state !== 'cancelled');
  if (decisive && (decisive.state === 'failed' || decisive.state === 'timeout')) {
    return { kind: 'failed', session: decisive, connected: completed };
  }
  if (completed?.result) {
    return {
      kind: 'connected',
      session: completed,
      at: completed.result.writtenAt,
      cliVmName: completed.result.cliVmName,
    };
  }
  return { kind: 'not_connected', last: mine[0] ?? null };
}

export interface StateSpan {
  state: AuthSessionState;
  at: string;
  reason: string | null;
  actor: string;
  /** How long the state lasted (ms), up to `now` for the current live state; null for an end state. */
  ms: number | null;
  current: boolean;
}

/** Each state the session went through, with how long it took (from its transitions). */
export function stateSpans(session: AuthSession, now: number): StateSpan[] {
  const t = session.transitions;
  return t.map((tr, i) => {
    const next = t[i + 1];
    const end = AUTH_END_STATES.includes(tr.state);
    const ms = next ? Date.parse(next.at) - Date.parse(tr.at) : end ? null : Math.max(0, now - Date.parse(tr.at));
    return { state: tr.state, at: tr.at, reason: tr.reason, actor: tr.actor, ms, current: !next };
  });
}

/** From the first transition to the end (or to `now` while live). */
export function totalMs(session: AuthSession, now: number): number {
  const first = session.transitions[0]?.at ?? session.createdAt;
  const last = isAuthSessionLive(session.state)
    ? now
    : Date.parse(session.transitions[session.transitions.length - 1]?.at ?? session.updatedAt);
  return Math.max(0, last - Date.parse(first));
}

export function formatMs(ms: number | null): string {
  if (ms === null) return '';
  if (ms < 1000) return `${ms} ms`;
  const s = ms / 1000;
  if (s < 60) return `${s.toFixed(s < 10 ? 1 : 0)} s`;
  const m = Math.floor(s / 60);
  const rest = Math.round(s - m * 60);
  if (m < 60) return `${m} min ${rest} s`;
  return `${Math.floor(m / 60)} h ${m % 60} min`;
}

export interface HistoryFilter {
  user: string;
  provider: ProviderName | '';
  state: AuthSessionState | '';
  /** Matched, case-insensitively, against the id, user, provider, who started it, the CLI VM and the error. */
  text: string;
}

export const NO_FILTER: HistoryFilter = { user: '', provider: '', state: '', text: '' };

export function filterHistory<T extends { session: AuthSession }>(rows: readonly T[], f: HistoryFilter): T[] {
  const text = f.text.trim().toLowerCase();
  return rows
    .filter(({ session: s }) => {
      if (f.user && s.user !== f.user) return false;
      if (f.provider && s.provider !== f.provider) return false;
      if (f.state && s.state !== f.state) return false;
      if (!text) return true;
      const hay = [
        s.id,
        s.user,
        s.provider,
        providerLabel(s.provider),
        s.startedBy,
        s.cliVmName ?? '',
        s.result?.cliVmName ?? '',
        s.state,
        STATE_TEXT[s.state],
        s.error?.message ?? '',
        s.error?.kind ?? '',
      ]
        .join('\n')
        .toLowerCase();
      return hay.includes(text);
    })
    .sort((a, b) => newestFirst(a.session, b.session));
}

/** The newer of two copies of one session (an event and a call's answer may arrive in either order). */
export function newerSession(a: AuthSession | undefined, b: AuthSession): AuthSession {
  if (!a) return b;
  if (b.transitions.length !== a.transitions.length) return b.transitions.length > a.transitions.length ? b : a;
  return b.updatedAt >= a.updatedAt ? b : a;
}
