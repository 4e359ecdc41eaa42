import { beforeEach, describe, expect, it } from 'vitest';
import type { AppCallName, AppEvent, AppParams, AppResult } from '../../../shared/app/contract';
import { FiredeckError } from '../../../shared/errors';
import type { AuthSession } from '../../../shared/protocol/auth';
import type { AppClient } from '../api/appClient';
import { session } from '../features/auth/authFixtures';
import type { DesktopNotifier } from '../features/auth/notify';
import { createAuthActions, endNotice, firstWords, NOTICE_REASON_MAX } from './authActions';
import { sessionKey, useAuthStore } from './authStore';
import { useUiStore } from './uiStore';

/** Answers daemon calls from a script and pushes events, as main would. */
class ScriptedClient implements AppClient {
  readonly transport = 'websocket' as const;
  readonly calls: { method: string; params: unknown }[] = [];
  private listeners: ((e: AppEvent) => void)[] = [];
  constructor(private readonly answer: (method: string, params: unknown) => unknown) {}
  call<N extends AppCallName>(name: N, params: AppParams<N>): Promise<AppResult<N>> {
    if (name !== 'daemon.call') return Promise.reject(new Error(`unexpected ${name}`));
    const p = params as { method: string; params: unknown };
    this.calls.push({ method: p.method, params: p.params });
    try {
      return Promise.resolve(this.answer(p.method, p.params) as AppResult<N>);
    } catch (err) {
      return Promise.reject(err as Error);
    }
  }
  onEvent(listener: (e: AppEvent) => void): () => void {
    this.listeners.push(listener);
    return () => undefined;
  }
  push(s: AuthSession): void {
    const e: AppEvent = {
      type: 'daemon.event',
      hostId: 'local',
      envelope: { seq: 1, at: s.updatedAt, event: { type: 'auth.session', session: s } },
    } as AppEvent;
    for (const l of this.listeners) l(e);
  }
}

class RecordingNotifier implements DesktopNotifier {
  asked = 0;
  shown: string[] = [];
  askOnce(): Promise<void> {
    this.asked++;
    return Promise.resolve();
  }
  show(title: string, body: string): void {
    this.shown.push(`${title}: ${body}`);
  }
}

const stored = (id: string): AuthSession | undefined =>
  useAuthStore.getState().sessions[sessionKey('local', id)]?.session;

beforeEach(() => {
  useAuthStore.setState({ sessions: {}, more: {}, addedUsers: {} });
  useUiStore.setState({ toasts: [], view: { name: 'users' } });
});

describe('auth actions', () => {
  it('apply events, and notify once when a watched session completes', () => {
    const client = new ScriptedClient(() => null);
    const notifier = new RecordingNotifier();
    createAuthActions(client, notifier);
    const live = session({
      path: [
        ['pending', 0],
        ['awaiting_user_auth', 5],
      ],
    });
    client.push(live);
    expect(stored(live.id)?.state).toBe('awaiting_user_auth');
    const done: AuthSession = {
      ...live,
      state: 'completed',
      updatedAt: '2026-01-01T12:01:00.000Z',
      transitions: [
        ...live.transitions,
        { state: 'completed', at: '2026-01-01T12:01:00.000Z', reason: null, actor: 'firedeckd' },
      ],
      result: {
        cliVmId: 'vm-0000000a',
        cliVmName: 'ada-cli',
        path: '.firedeck-selftest/credentials.json',
        sha256: 'cd'.repeat(32),
        transfer: 'online',
        verifiedBy: 'hash',
        writtenAt: '2026-01-01T12:00:59.000Z',
      },
    };
    client.push(done);
    client.push(done);
    // A late copy of the older state changes nothing.
    client.push(live);
    expect(stored(live.id)?.state).toBe('completed');
    expect(notifier.shown).toEqual([
      'Login completed: ada@example.org · Self-test (local OpenID provider): written to ada-cli and verified',
    ]);
    expect(useUiStore.getState().toasts.map((t) => t.tone)).toEqual(['ok']);
  });

  it('connect asks for notification permission, starts the session and opens it', async () => {
    const started = session({ path: [['pending', 0]] });
    const client = new ScriptedClient((method) => (method === 'auth.start' ? started : null));
    const notifier = new RecordingNotifier();
    const auth = createAuthActions(client, notifier);
    expect(await auth.connect('local', 'ada@example.org', 'selftest')).toBe(true);
    expect(notifier.asked).toBe(1);
    expect(client.calls).toEqual([{ method: 'auth.start', params: { user: 'ada@example.org', provider: 'selftest' } }]);
    expect(useUiStore.getState().view).toEqual({ name: 'auth', hostId: 'local', sessionId: started.id });
    expect(stored(started.id)).toBe(started);
  });

  it('a headless connect names the mode; a pasted code goes to auth.submitCode and its answer is applied', async () => {
    const started = session({ provider: 'gemini_cli', mode: 'headless', path: [['pending', 0]] });
    const moved = session({
      id: started.id,
      provider: 'gemini_cli',
      mode: 'headless',
      path: [
        ['pending', 0],
        ['awaiting_user_auth', 5],
        ['authenticating', 9],
      ],
    });
    const client = new ScriptedClient((method) => {
      if (method === 'auth.start') return started;
      if (method === 'auth.submitCode') return moved;
      throw new FiredeckError('invalid_state', 'Auth session is not waiting for a code', { hint: 'only once' });
    });
    const auth = createAuthActions(client, new RecordingNotifier());
    expect(await auth.connect('local', 'ada@example.org', 'gemini_cli', 'headless')).toBe(true);
    expect(await auth.submitCode('local', started.id, '4/0Abc')).toBe(true);
    expect(client.calls).toEqual([
      { method: 'auth.start', params: { user: 'ada@example.org', provider: 'gemini_cli', mode: 'headless' } },
      { method: 'auth.submitCode', params: { id: started.id, code: '4/0Abc' } },
    ]);
    expect(stored(started.id)?.state).toBe('authenticating');
    // A refusal is a toast (without the code), and false for the form.
    const refusing = createAuthActions(
      new ScriptedClient(() => {
        throw new FiredeckError('invalid_state', 'Auth session is not waiting for a code');
      }),
      new RecordingNotifier(),
    );
    expect(await refusing.submitCode('local', started.id, '4/0Abc')).toBe(false);
    expect(useUiStore.getState().toasts.map((t) => t.text)).toEqual([
      'Submit the code: Auth session is not waiting for a code',
    ]);
  });

  it('a refused start stays on the users view with the error and its hint', async () => {
    const client = new ScriptedClient(() => {
      throw new FiredeckError('not_found', 'No CLI image installed', { hint: 'install one with firedeckd image add' });
    });
    const auth = createAuthActions(client, new RecordingNotifier());
    expect(await auth.connect('local', 'ada@example.org', 'codex')).toBe(false);
    expect(useUiStore.getState().view).toEqual({ name: 'users' });
    expect(useUiStore.getState().toasts[0]?.text).toContain(
      'No CLI image installed (install one with firedeckd image add)',
    );
  });

  it('retry opens the new session; paging asks for sessions before the oldest known', async () => {
    const failed = session({
      path: [
        ['pending', 0],
        ['failed', 3],
      ],
      error: { kind: 'x', message: 'boom' },
    });
    const again = session({ path: [['pending', 10]], retryOf: failed.id });
    const client = new ScriptedClient((method) =>
      method === 'auth.retry' ? again : method === 'auth.list' ? [] : null,
    );
    const auth = createAuthActions(client, new RecordingNotifier());
    client.push(failed);
    await auth.retry('local', failed.id);
    expect(useUiStore.getState().view).toEqual({ name: 'auth', hostId: 'local', sessionId: again.id });
    await auth.loadOlder('local');
    expect(client.calls.at(-1)).toEqual({ method: 'auth.list', params: { limit: 100, before: failed.id } });
    expect(useAuthStore.getState().more.local).toBe(false);
  });
});

describe('end notices', () => {
  it('are for completed, failed and timed-out sessions, once per state', () => {
    const failed = session({
      path: [
        ['pending', 0],
        ['failed', 1],
      ],
      error: { kind: 'x', message: 'Issuer unreachable' },
    });
    expect(endNotice(undefined, failed)).toEqual({
      title: 'Login failed',
      body: 'ada@example.org · Self-test (local OpenID provider): Issuer unreachable',
    });
    expect(endNotice(failed, failed)).toBeNull();
    expect(
      endNotice(
        undefined,
        session({
          path: [
            ['pending', 0],
            ['cancelled', 1],
          ],
        }),
      ),
    ).toBeNull();
    expect(
      endNotice(
        undefined,
        session({
          path: [
            ['pending', 0],
            ['timeout', 1],
          ],
        }),
      )?.title,
    ).toBe('Login timed out');
  });
});

describe('a failed session’s reason in its notice', () => {
  it('is its first line, cut at a word with an ellipsis, and the whole of a short one-line reason', () => {
    expect(firstWords('Issuer unreachable')).toBe('Issuer unreachable');
    expect(firstWords('\n  Login failed: exit 1\n    at main (cli.js:10)\n    at run (cli.js:20)')).toBe(
      'Login failed: exit 1 …',
    );
    const long = `The CLI said: ${'request to the token endpoint failed '.repeat(8)}`;
    const cut = firstWords(long);
    expect(cut.length).toBeLessThanOrEqual(NOTICE_REASON_MAX + 1);
    expect(cut.endsWith('…')).toBe(true);
    expect(long.startsWith(cut.slice(0, -1))).toBe(true);
    expect(cut.slice(0, -1)).toMatch(/\S$/);
    expect(long[cut.length - 1]).toBe(' ');
    // One long word: cut where it must be.
    expect(firstWords('x'.repeat(300))).toBe(`${'x'.repeat(NOTICE_REASON_MAX)}…`);
  });

  it('keeps a many-line error out of the toast and the desktop notification', () => {
    const failed = session({
      path: [
        ['pending', 0],
        ['failed', 1],
      ],
      error: { kind: 'x', message: `codex login: error sending request\n${'  stack line\n'.repeat(40)}` },
    });
    expect(endNotice(undefined, failed)?.body).toBe(
      'ada@example.org · Self-test (local OpenID provider): codex login: error sending request …',
    );
  });
});
