import { describe, expect, it } from 'vitest';
import type { AuthSessionState } from '../../../../shared/protocol/auth';
import type { Vm } from '../../../../shared/protocol/vm';
import {
  HAPPY_PATH,
  PROVIDER_ORDER,
  STATE_TEXT,
  canCancel,
  checkPastedCode,
  happyPath,
  hasHeadlessLogin,
  stateText,
  takesPastedCode,
  canRetry,
  filterHistory,
  formatMs,
  newerSession,
  providerStatus,
  stateSpans,
  totalMs,
  usersOf,
} from './authModel';
import { T0, at, result, session } from './authFixtures';

function vm(owner: string, kind: Vm['kind']): Vm {
  return { owner, kind } as Vm;
}

describe('users of a host', () => {
  it('are the owners of CLI VMs, the users of sessions and the added ones, each once, sorted', () => {
    const users = usersOf(
      [vm('zed@x.org', 'cli'), vm('ada@example.org', 'cli'), vm('browser-only@x.org', 'browser')],
      [session({ user: 'bob@x.org' }), session({ user: 'ada@example.org' })],
      ['new@x.org', 'bob@x.org'],
    );
    expect(users).toEqual(['ada@example.org', 'bob@x.org', 'new@x.org', 'zed@x.org']);
  });
});

describe('providers', () => {
  it('show the self-test last', () => {
    expect(PROVIDER_ORDER).toEqual(['codex', 'claude_code', 'gemini_cli', 'selftest']);
  });
});

describe('provider state per user', () => {
  it('is not connected without sessions, and ignores other users and providers', () => {
    const other = [session({ user: 'bob@x.org' }), session({ provider: 'codex', path: [['pending', 0]] })];
    expect(providerStatus(other, 'ada@example.org', 'selftest')).toEqual({ kind: 'not_connected', last: null });
  });

  it('is in progress while a session is live, even after an earlier completion', () => {
    const done = session({
      path: [
        ['pending', 0],
        ['completed', 10],
      ],
      result: result('ada-cli', 10),
    });
    const live = session({
      path: [
        ['pending', 20],
        ['awaiting_user_auth', 30],
      ],
    });
    const st = providerStatus([done, live], 'ada@example.org', 'selftest');
    expect(st.kind).toBe('in_progress');
    expect(st.kind === 'in_progress' && st.session.id).toBe(live.id);
  });

  it('is connected after a completed session: when, and which CLI VM', () => {
    const done = session({
      path: [
        ['pending', 0],
        ['completed', 10],
      ],
      result: result('ada-cli', 9),
    });
    expect(providerStatus([done], 'ada@example.org', 'selftest')).toMatchObject({
      kind: 'connected',
      at: at(9),
      cliVmName: 'ada-cli',
    });
  });

  it('is failed (with the error) when the newest decisive session failed or timed out', () => {
    const done = session({
      path: [
        ['pending', 0],
        ['completed', 10],
      ],
      result: result('ada-cli', 9),
    });
    const failed = session({
      path: [
        ['pending', 20],
        ['failed', 25],
      ],
      error: { kind: 'provider_error', message: 'login refused', hint: 'check the account' },
    });
    const st = providerStatus([done, failed], 'ada@example.org', 'selftest');
    expect(st).toMatchObject({ kind: 'failed', session: { id: failed.id }, connected: { id: done.id } });
    const timeout = session({
      path: [
        ['pending', 30],
        ['timeout', 40],
      ],
    });
    expect(providerStatus([failed, timeout], 'ada@example.org', 'selftest')).toMatchObject({
      kind: 'failed',
      session: { id: timeout.id },
      connected: null,
    });
  });

  it('leaves the state before a cancelled attempt standing', () => {
    const done = session({
      path: [
        ['pending', 0],
        ['completed', 10],
      ],
      result: result('ada-cli', 9),
    });
    const cancelled = session({
      path: [
        ['pending', 20],
        ['cancelled', 25],
      ],
    });
    expect(providerStatus([done, cancelled], 'ada@example.org', 'selftest').kind).toBe('connected');
    expect(providerStatus([cancelled], 'ada@example.org', 'selftest')).toMatchObject({
      kind: 'not_connected',
      last: { id: cancelled.id },
    });
  });
});

describe('durations from transitions', () => {
  it('give each state the time until the next one, the live state its time so far, an end state none', () => {
    const live = session({
      path: [
        ['pending', 0],
        ['vm_created', 2],
        ['ready', 32],
      ],
    });
    const spans = stateSpans(live, T0 + 40_000);
    expect(spans.map((s) => [s.state, s.ms, s.current])).toEqual([
      ['pending', 2000, false],
      ['vm_created', 30_000, false],
      ['ready', 8000, true],
    ]);
    expect(totalMs(live, T0 + 40_000)).toBe(40_000);
    const ended = session({
      path: [
        ['pending', 0],
        ['awaiting_user_auth', 5],
        ['completed', 65],
      ],
    });
    expect(stateSpans(ended, T0 + 999_000).map((s) => s.ms)).toEqual([5000, 60_000, null]);
    expect(totalMs(ended, T0 + 999_000)).toBe(65_000);
  });

  it('are written in words', () => {
    expect(formatMs(450)).toBe('450 ms');
    expect(formatMs(2500)).toBe('2.5 s');
    expect(formatMs(42_000)).toBe('42 s');
    expect(formatMs(125_000)).toBe('2 min 5 s');
    expect(formatMs(2 * 3600_000 + 60_000)).toBe('2 h 1 min');
    expect(formatMs(null)).toBe('');
  });
});

describe('history filters', () => {
  const a = session({
    user: 'ada@example.org',
    provider: 'codex',
    path: [
      ['pending', 0],
      ['completed', 5],
    ],
  });
  const b = session({
    user: 'bob@x.org',
    provider: 'selftest',
    startedBy: 'helpdesk7',
    path: [
      ['pending', 10],
      ['failed', 12],
    ],
    error: { kind: 'provider_error', message: 'Issuer unreachable' },
  });
  const c = session({ user: 'bob@x.org', provider: 'gemini_cli', path: [['pending', 20]] });
  const rows = [a, b, c].map((session) => ({ hostId: 'local', session }));
  const ids = (f: Parameters<typeof filterHistory>[1]): string[] => filterHistory(rows, f).map((r) => r.session.id);
  const none = { user: '', provider: '', state: '', text: '' } as const;

  it('list newest first and narrow by user, provider and state', () => {
    expect(ids(none)).toEqual([c.id, b.id, a.id]);
    expect(ids({ ...none, user: 'bob@x.org' })).toEqual([c.id, b.id]);
    expect(ids({ ...none, provider: 'codex' })).toEqual([a.id]);
    expect(ids({ ...none, state: 'failed' })).toEqual([b.id]);
    expect(ids({ ...none, user: 'bob@x.org', state: 'completed' })).toEqual([]);
  });

  it('search who ran it, the provider label and the error, case-insensitively', () => {
    expect(ids({ ...none, text: 'HELPDESK' })).toEqual([b.id]);
    expect(ids({ ...none, text: 'gemini cli' })).toEqual([c.id]);
    expect(ids({ ...none, text: 'unreachable' })).toEqual([b.id]);
    expect(ids({ ...none, text: 'nothing like it' })).toEqual([]);
  });
});

describe('session actions and copies', () => {
  it('cancel at live states but authenticating, retry after failed, timeout or cancelled', () => {
    expect(canCancel('awaiting_user_auth')).toBe(true);
    expect(canCancel('pending')).toBe(true);
    expect(canCancel('authenticating')).toBe(false);
    expect(canCancel('completed')).toBe(false);
    expect(
      ['failed', 'timeout', 'cancelled', 'completed', 'ready'].map((s) => canRetry(s as AuthSessionState)),
    ).toEqual([true, true, true, false, false]);
  });

  it('keep the copy that went further (an event may overtake a call answer)', () => {
    const early = session({ path: [['pending', 0]] });
    const later = {
      ...early,
      state: 'vm_created' as const,
      transitions: [
        ...early.transitions,
        { state: 'vm_created' as const, at: at(3), reason: null, actor: 'firedeckd' },
      ],
      updatedAt: at(3),
    };
    expect(newerSession(later, early)).toBe(later);
    expect(newerSession(early, later)).toBe(later);
    const urlSet = { ...later, authorizeUrl: 'http://10.0.0.1/authorize', updatedAt: at(4) };
    expect(newerSession(later, urlSet)).toBe(urlSet);
    expect(newerSession(undefined, early)).toBe(early);
  });
});

describe('headless logins in the model', () => {
  it('which providers offer one, and which take a pasted code', () => {
    expect(PROVIDER_ORDER.filter(hasHeadlessLogin)).toEqual(['codex', 'claude_code', 'gemini_cli']);
    expect(PROVIDER_ORDER.filter(takesPastedCode)).toEqual(['claude_code', 'gemini_cli']);
  });

  it('a headless timeline has no browser VM steps, and its states say so', () => {
    expect(happyPath('headless')).toEqual(['pending', 'awaiting_user_auth', 'authenticating', 'completed']);
    expect(happyPath('browser')).toEqual(HAPPY_PATH);
    expect(stateText('authenticating', 'headless')).toBe('checking the login in the CLI VM');
    expect(stateText('authenticating', 'browser')).toBe(STATE_TEXT.authenticating);
    expect(stateText('failed', 'headless')).toBe('failed');
  });

  it('a pasted code is checked as the daemon checks it, trimmed', () => {
    expect(checkPastedCode('  4/0AbC-d_e \n')).toEqual({ ok: true, code: '4/0AbC-d_e' });
    expect(checkPastedCode('   ')).toMatchObject({ ok: false });
    expect(checkPastedCode('two words')).toEqual({ ok: false, why: 'a code is printable ASCII without spaces' });
    expect(checkPastedCode('x'.repeat(2049))).toMatchObject({ ok: false });
  });
});
