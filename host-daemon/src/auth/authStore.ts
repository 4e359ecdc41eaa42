import { randomBytes } from 'node:crypto';
import type { Statement } from 'better-sqlite3';
import { z } from 'zod';
import { FiredeckError } from '../../../src/shared/errors';
import type { AuthSessionState } from '../../../src/shared/protocol/auth';
import {
  AUTH_END_STATES,
  AUTH_TRANSITIONS,
  AuthSession,
  type AuthListParams,
  type AuthMode,
} from '../../../src/shared/protocol/auth';
import type { ProviderName } from '../../../src/shared/protocol/providers';
import { statementCache, type Db } from '../store/db';

const Row = z.object({
  id: z.string(),
  user: z.string(),
  provider: z.string(),
  mode: z.string(),
  state: z.string(),
  started_by: z.string(),
  created_at: z.string(),
  updated_at: z.string(),
  deadline: z.string().nullable(),
  browser_vm_id: z.string().nullable(),
  cli_vm_id: z.string().nullable(),
  cli_vm_name: z.string().nullable(),
  authorize_url: z.string().nullable(),
  user_code: z.string().nullable(),
  awaiting_code: z.number().int(),
  result: z.string().nullable(),
  error: z.string().nullable(),
  retry_of: z.string().nullable(),
  credential_id: z.string().nullable(),
});
type Row = z.infer<typeof Row>;

const TransitionRow = z.object({
  state: z.string(),
  at: z.string(),
  reason: z.string().nullable(),
  actor: z.string(),
});

/** The fields a session's steps fill in as it goes (never its state: that moves only by `transition`). */
export interface AuthSessionPatch {
  deadline?: string | null;
  browserVmId?: string | null;
  cliVmId?: string | null;
  cliVmName?: string | null;
  authorizeUrl?: string | null;
  userCode?: string | null;
  awaitingCode?: boolean;
  result?: AuthSession['result'];
  error?: AuthSession['error'];
  credentialId?: string | null;
}

const COLUMNS: Record<keyof AuthSessionPatch, string> = {
  deadline: 'deadline',
  browserVmId: 'browser_vm_id',
  cliVmId: 'cli_vm_id',
  cliVmName: 'cli_vm_name',
  authorizeUrl: 'authorize_url',
  userCode: 'user_code',
  awaitingCode: 'awaiting_code',
  result: 'result',
  error: 'error',
  credentialId: 'credential_id',
};

const END_LIST = AUTH_END_STATES.map((s) => `'${s}'`).join(', ');

/**
 * Auth sessions and their transitions in the daemon's SQLite store. A move is checked against
 * AUTH_TRANSITIONS and written with its row update in one transaction, so the history and the state never
 * disagree; at most one live session per user and provider (a unique index, so two concurrent starts cannot
 * both win).
 */
export class AuthStore {
  private readonly q: (sql: string) => Statement;

  constructor(
    private readonly db: Db,
    private readonly now: () => Date = () => new Date(),
  ) {
    this.q = statementCache(db);
  }

  create(input: {
    user: string;
    provider: ProviderName;
    mode: AuthMode;
    startedBy: string;
    deadline: string;
    retryOf?: string | null;
  }): AuthSession {
    const id = `auth-${randomBytes(8).toString('hex')}`;
    const at = this.now().toISOString();
    const insert = this.db.transaction(() => {
      this.q(
        `INSERT INTO auth_sessions (id, user, provider, mode, state, started_by, created_at, updated_at, deadline, retry_of)
           VALUES (@id, @user, @provider, @mode, 'pending', @startedBy, @at, @at, @deadline, @retryOf)`,
      ).run({ id, ...input, retryOf: input.retryOf ?? null, at });
      this.q(`INSERT INTO auth_transitions (session_id, state, at, reason, actor) VALUES (?, 'pending', ?, ?, ?)`).run(
        id,
        at,
        null,
        input.startedBy,
      );
    });
    try {
      insert();
    } catch (err) {
      if (
        err instanceof Error &&
        /UNIQUE constraint failed: auth_sessions\.user, auth_sessions\.provider/.test(err.message)
      ) {
        const live = this.live(input.user, input.provider);
        throw new FiredeckError(
          'conflict',
          `${input.user} already has a live ${input.provider} session${live ? ` (${live.id}, ${live.state})` : ''}`,
          { hint: 'Open that session, or cancel it first.', ...(live ? { details: { sessionId: live.id } } : {}) },
        );
      }
      throw err;
    }
    return this.get(id);
  }

  get(id: string): AuthSession {
    const raw = this.q('SELECT * FROM auth_sessions WHERE id = ?').get(id);
    if (raw === undefined) throw new FiredeckError('not_found', `No auth session ${id}`);
    return this.toSession(Row.parse(raw));
  }

  /** The user's live session for a provider, if any. */
  live(user: string, provider: ProviderName): AuthSession | null {
    const raw = this.q(
      `SELECT * FROM auth_sessions WHERE user = ? AND provider = ? AND state NOT IN (${END_LIST})`,
    ).get(user, provider);
    return raw === undefined ? null : this.toSession(Row.parse(raw));
  }

  /** Every live session (what a restarted daemon must settle). */
  allLive(): AuthSession[] {
    return this.q(`SELECT * FROM auth_sessions WHERE state NOT IN (${END_LIST}) ORDER BY rowid`)
      .all()
      .map((r) => this.toSession(Row.parse(r)));
  }

  /** History, newest first, paged with `before`. */
  list(p: AuthListParams = {}): AuthSession[] {
    const rows = this.q(
      `SELECT * FROM auth_sessions
         WHERE (@user IS NULL OR user = @user) AND (@provider IS NULL OR provider = @provider)
           AND (@state IS NULL OR state = @state)
           AND (@live = 0 OR state NOT IN (${END_LIST}))
           AND (@before IS NULL OR rowid < (SELECT rowid FROM auth_sessions WHERE id = @before))
         ORDER BY rowid DESC LIMIT @limit`,
    ).all({
      user: p.user ?? null,
      provider: p.provider ?? null,
      state: p.state ?? null,
      live: p.live === true ? 1 : 0,
      before: p.before ?? null,
      limit: p.limit ?? 100,
    });
    return rows.map((r) => this.toSession(Row.parse(r)));
  }

  update(id: string, patch: AuthSessionPatch): AuthSession {
    const sets: string[] = [];
    const values: Record<string, unknown> = { id, at: this.now().toISOString() };
    for (const [key, value] of Object.entries(patch) as [keyof AuthSessionPatch, unknown][]) {
      if (value === undefined) continue;
      const column = COLUMNS[key];
      sets.push(`${column} = @${column}`);
      values[column] =
        key === 'result' || key === 'error'
          ? value === null
            ? null
            : JSON.stringify(value)
          : key === 'awaitingCode'
            ? value
              ? 1
              : 0
            : value;
    }
    if (sets.length > 0) {
      this.q(`UPDATE auth_sessions SET ${sets.join(', ')}, updated_at = @at WHERE id = @id`).run(values);
    }
    return this.get(id);
  }

  /**
   * Moves a session to `to` (with the patch, in the same transaction), or refuses a move AUTH_TRANSITIONS does not
   * allow with `invalid_state`. Returns the session as it is now.
   */
  transition(
    id: string,
    to: AuthSessionState,
    how: { reason: string | null; actor: string },
    patch: AuthSessionPatch = {},
  ): AuthSession {
    const move = this.db.transaction(() => {
      const current = this.get(id);
      if (!AUTH_TRANSITIONS[current.state].includes(to)) {
        throw new FiredeckError('invalid_state', `Auth session ${id} is ${current.state}; it cannot become ${to}`);
      }
      const at = this.now().toISOString();
      this.q('UPDATE auth_sessions SET state = ?, updated_at = ? WHERE id = ?').run(to, at, id);
      this.q('INSERT INTO auth_transitions (session_id, state, at, reason, actor) VALUES (?, ?, ?, ?, ?)').run(
        id,
        to,
        at,
        how.reason,
        how.actor,
      );
      // An ended session has no deadline and waits for no code.
      return this.update(id, AUTH_END_STATES.includes(to) ? { deadline: null, awaitingCode: false, ...patch } : patch);
    });
    return move();
  }

  private toSession(r: Row): AuthSession {
    const transitions = this.q(
      'SELECT state, at, reason, actor FROM auth_transitions WHERE session_id = ? ORDER BY seq',
    )
      .all(r.id)
      .map((t) => TransitionRow.parse(t));
    return AuthSession.parse({
      id: r.id,
      user: r.user,
      provider: r.provider,
      mode: r.mode,
      state: r.state,
      startedBy: r.started_by,
      createdAt: r.created_at,
      updatedAt: r.updated_at,
      deadline: r.deadline,
      browserVmId: r.browser_vm_id,
      cliVmId: r.cli_vm_id,
      cliVmName: r.cli_vm_name,
      authorizeUrl: r.authorize_url,
      userCode: r.user_code,
      awaitingCode: r.awaiting_code === 1,
      result: r.result === null ? null : JSON.parse(r.result),
      error: r.error === null ? null : JSON.parse(r.error),
      retryOf: r.retry_of,
      transitions,
    });
  }
}

/** For the store's readers: is this state an end? */
export function isEndState(state: AuthSessionState): boolean {
  return AUTH_END_STATES.includes(state);
}
