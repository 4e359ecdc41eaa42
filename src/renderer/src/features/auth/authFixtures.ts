import type { AuthSession, AuthSessionState } from '../../../../shared/protocol/auth';

/** Sessions for the auth views' tests. */
export const T0 = Date.parse('2026-01-01T12:00:00Z');
export const at = (s: number): string => new Date(T0 + s * 1000).toISOString();

let n = 0;
export function session(patch: Partial<AuthSession> & { path?: [AuthSessionState, number][] } = {}): AuthSession {
  const { path = [['pending', 0]], ...rest } = patch;
  const transitions = path.map(([state, s]) => ({ state, at: at(s), reason: null, actor: 'firedeckd' }));
  const last = transitions[transitions.length - 1]!;
  n++;
  return {
    id: `auth-${n.toString(16).padStart(8, '0')}`,
    user: 'ada@example.org',
    provider: 'selftest',
    mode: 'browser',
    state: last.state,
    startedBy: 'support',
    createdAt: transitions[0]!.at,
    updatedAt: last.at,
    deadline: null,
    browserVmId: null,
    cliVmId: null,
    cliVmName: null,
    authorizeUrl: null,
    userCode: null,
    awaitingCode: false,
    result: null,
    error: null,
    retryOf: null,
    transitions,
    ...rest,
  };
}

export const result = (name: string, s: number): NonNullable<AuthSession['result']> => ({
  cliVmId: 'vm-0000000a',
  cliVmName: name,
  path: '.firedeck-selftest/credentials.json',
  sha256: 'ab'.repeat(32),
  transfer: 'online',
  verifiedBy: 'status-check',
  writtenAt: at(s),
});
