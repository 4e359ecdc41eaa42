import { create } from 'zustand';
import type { AuthSession } from '../../../shared/protocol/auth';
import { newerSession } from '../features/auth/authModel';

export interface HostedSession {
  hostId: string;
  session: AuthSession;
}

/**
 * Server state: the auth sessions each connected host reported (auth.list, auth.* answers and `auth.session`
 * events). A session carries no secret (no credential, no VNC password): nothing here ever holds one.
 */
export interface AuthState {
  /** `${hostId}/${sessionId}` → session. */
  sessions: Record<string, HostedSession>;
  /** Per host: whether older sessions remain to be paged in (auth.list's `before`). */
  more: Record<string, boolean>;
  /** Users the operator typed in per host, before any session or VM of theirs exists. */
  addedUsers: Record<string, string[]>;
  /** Keeps the newer copy of each session (an event and a call's answer may arrive in either order). */
  apply(hostId: string, sessions: readonly AuthSession[]): void;
  setMore(hostId: string, more: boolean): void;
  addUser(hostId: string, user: string): void;
  dropHost(hostId: string): void;
}

export const sessionKey = (hostId: string, id: string): string => `${hostId}/${id}`;

export const useAuthStore = create<AuthState>()((set) => ({
  sessions: {},
  more: {},
  addedUsers: {},
  apply: (hostId, list) =>
    set((s) => {
      const sessions = { ...s.sessions };
      for (const session of list) {
        const key = sessionKey(hostId, session.id);
        const next = newerSession(sessions[key]?.session, session);
        if (next !== sessions[key]?.session) sessions[key] = { hostId, session: next };
      }
      return { sessions };
    }),
  setMore: (hostId, more) => set((s) => ({ more: { ...s.more, [hostId]: more } })),
  addUser: (hostId, user) =>
    set((s) => {
      const list = s.addedUsers[hostId] ?? [];
      return list.includes(user) ? {} : { addedUsers: { ...s.addedUsers, [hostId]: [...list, user] } };
    }),
  dropHost: (hostId) =>
    set((s) => ({
      sessions: Object.fromEntries(Object.entries(s.sessions).filter(([, v]) => v.hostId !== hostId)),
      more: { ...s.more, [hostId]: false },
    })),
}));

/** The sessions of one host. */
export function sessionsOf(sessions: Record<string, HostedSession>, hostId: string): AuthSession[] {
  return Object.values(sessions)
    .filter((v) => v.hostId === hostId)
    .map((v) => v.session);
}
