import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FiredeckError } from '../../../src/shared/errors';
import { AUTH_TRANSITIONS, AuthSessionState } from '../../../src/shared/protocol/auth';
import { openDb, type Db } from '../store/db';
import { AuthStore } from './authStore';

let dir: string;
let db: Db;
let store: AuthStore;

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fd-authstore-'));
  db = openDb(path.join(dir, 'firedeck.db'));
  store = new AuthStore(db);
});
afterEach(() => {
  db.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

const deadline = new Date(Date.now() + 60_000).toISOString();
const start = (user = 'alice', provider: 'selftest' | 'codex' = 'selftest') =>
  store.create({ user, provider, mode: 'browser', startedBy: 'support1', deadline });

describe('AuthStore', () => {
  it('records every move with its time, reason and actor, in order, and survives a reopen', () => {
    const s = start();
    store.transition(
      s.id,
      'vm_created',
      { reason: 'browser VM made', actor: 'firedeckd' },
      { browserVmId: 'vm-0000aaaa' },
    );
    store.transition(s.id, 'ready', { reason: 'markers', actor: 'firedeckd' });
    store.transition(s.id, 'cancelled', { reason: 'cancelled by support2', actor: 'support2' });
    db.close();
    db = openDb(path.join(dir, 'firedeck.db'));
    const again = new AuthStore(db).get(s.id);
    expect(again.state).toBe('cancelled');
    expect(again.browserVmId).toBe('vm-0000aaaa');
    expect(again.deadline).toBeNull();
    expect(again.transitions.map((t) => [t.state, t.actor, t.reason])).toEqual([
      ['pending', 'support1', null],
      ['vm_created', 'firedeckd', 'browser VM made'],
      ['ready', 'firedeckd', 'markers'],
      ['cancelled', 'support2', 'cancelled by support2'],
    ]);
    for (const t of again.transitions) expect(Number.isNaN(Date.parse(t.at))).toBe(false);
  });

  it('refuses every move the table does not allow, and leaves the session as it was', () => {
    for (const from of AuthSessionState.options) {
      for (const to of AuthSessionState.options) {
        if (AUTH_TRANSITIONS[from].includes(to)) continue;
        const s = start(`u-${from}-${to}`.replace(/_/g, '-'));
        // Walk the session to `from` along allowed moves.
        const path: Record<string, AuthSessionState[]> = {
          pending: [],
          vm_created: ['vm_created'],
          ready: ['vm_created', 'ready'],
          awaiting_user_auth: ['vm_created', 'ready', 'awaiting_user_auth'],
          authenticating: ['vm_created', 'ready', 'awaiting_user_auth', 'authenticating'],
          completed: ['vm_created', 'ready', 'awaiting_user_auth', 'authenticating', 'completed'],
          failed: ['failed'],
          timeout: ['timeout'],
          cancelled: ['cancelled'],
        };
        for (const step of path[from]!) store.transition(s.id, step, { reason: null, actor: 'firedeckd' });
        const before = store.get(s.id);
        let caught: unknown;
        try {
          store.transition(s.id, to, { reason: null, actor: 'firedeckd' });
        } catch (err) {
          caught = err;
        }
        expect(caught, `${from} → ${to}`).toBeInstanceOf(FiredeckError);
        expect((caught as FiredeckError).kind).toBe('invalid_state');
        expect(store.get(s.id)).toEqual(before);
      }
    }
  });

  it('keeps one live session per user and provider; an ended one frees the slot', () => {
    const first = start();
    expect(() => start()).toThrow(/already has a live selftest session/);
    try {
      start();
    } catch (err) {
      expect((err as FiredeckError).kind).toBe('conflict');
    }
    // Another provider or another user is fine.
    start('alice', 'codex');
    start('bob');
    store.transition(first.id, 'failed', { reason: 'x', actor: 'firedeckd' });
    expect(start().state).toBe('pending');
  });

  it('lists history newest first, filtered and paged', () => {
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) {
      const s = start();
      ids.push(s.id);
      store.transition(s.id, 'failed', { reason: null, actor: 'firedeckd' });
    }
    start('bob');
    expect(store.list({ user: 'alice' }).map((s) => s.id)).toEqual([...ids].reverse());
    const page1 = store.list({ user: 'alice', limit: 2 });
    const page2 = store.list({ user: 'alice', limit: 2, before: page1[1]!.id });
    expect([...page1, ...page2].map((s) => s.id)).toEqual([...ids].reverse().slice(0, 4));
    expect(store.list({ live: true }).map((s) => s.user)).toEqual(['bob']);
    expect(store.allLive().map((s) => s.user)).toEqual(['bob']);
  });

  it('refuses edits of the transition history', () => {
    const s = start();
    expect(() => db.prepare('UPDATE auth_transitions SET actor = ? WHERE session_id = ?').run('root', s.id)).toThrow(
      /append-only/,
    );
    expect(() => db.prepare('DELETE FROM auth_transitions WHERE session_id = ?').run(s.id)).toThrow(/append-only/);
  });
});
