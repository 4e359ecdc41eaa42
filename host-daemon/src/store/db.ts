import Database from 'better-sqlite3';
import fs from 'node:fs';
import path from 'node:path';

export type Db = Database.Database;

/**
 * A store's statement source: each SQL text is prepared once and reused. Preparing per call would hold native
 * memory until V8 happens to collect the statement objects.
 */
export function statementCache(db: Db): (sql: string) => Database.Statement {
  const statements = new Map<string, Database.Statement>();
  return (sql) => {
    let st = statements.get(sql);
    if (!st) {
      st = db.prepare(sql);
      statements.set(sql, st);
    }
    return st;
  };
}

/** One schema step; `version` is the schema version after it ran. Never edit a shipped step, add one. */
export interface Migration {
  version: number;
  up: string;
}

export const migrations: readonly Migration[] = [
  {
    version: 1,
    up: `
      CREATE TABLE vms (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        kind TEXT NOT NULL CHECK (kind IN ('cli', 'browser')),
        owner TEXT NOT NULL,
        image TEXT NOT NULL,
        driver TEXT NOT NULL CHECK (driver IN ('qemu', 'firecracker')),
        vcpus INTEGER NOT NULL,
        memory_mib INTEGER NOT NULL,
        disk_mib INTEGER NOT NULL,
        session_id TEXT,
        state TEXT NOT NULL,
        ready TEXT NOT NULL DEFAULT '[]',
        pid INTEGER,
        handle TEXT,
        host_key TEXT,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        started_at TEXT,
        expires_at TEXT,
        last_error TEXT
      );
      -- Names are unique among VMs that still exist; a destroyed VM's name may be reused.
      CREATE UNIQUE INDEX vms_live_name ON vms(name) WHERE state <> 'destroyed';

      CREATE TABLE ip_leases (
        vm_id TEXT PRIMARY KEY REFERENCES vms(id) ON DELETE CASCADE,
        address TEXT NOT NULL UNIQUE,
        tap_index INTEGER NOT NULL UNIQUE,
        tap TEXT NOT NULL UNIQUE,
        mac TEXT NOT NULL,
        leased_at TEXT NOT NULL
      );

      CREATE TABLE audit_events (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        at TEXT NOT NULL,
        user TEXT NOT NULL,
        uid INTEGER,
        method TEXT NOT NULL,
        params TEXT NOT NULL,
        ok INTEGER NOT NULL,
        error_kind TEXT,
        error_message TEXT
      );
      CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events
        BEGIN SELECT RAISE(ABORT, 'audit_events is append-only'); END;
      CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events
        BEGIN SELECT RAISE(ABORT, 'audit_events is append-only'); END;
    `,
  },
  {
    version: 2,
    up: `
      -- The credential vault (host-daemon/src/credentials/vault.ts). A vaulted record holds its AES-256-GCM
      -- ciphertext; once written into its CLI VM (or superseded) only the metadata stays.
      CREATE TABLE credentials (
        id TEXT PRIMARY KEY,
        owner TEXT NOT NULL,
        provider TEXT NOT NULL,
        state TEXT NOT NULL CHECK (state IN ('vaulted', 'written', 'superseded')),
        format INTEGER NOT NULL,
        key_id TEXT,
        iv BLOB,
        ciphertext BLOB,
        tag BLOB,
        sha256 TEXT NOT NULL CHECK (length(sha256) = 64),
        size INTEGER NOT NULL,
        session_id TEXT,
        target_vm_id TEXT REFERENCES vms(id) ON DELETE SET NULL,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        written_at TEXT,
        CHECK ((state = 'vaulted') =
          (key_id IS NOT NULL AND iv IS NOT NULL AND ciphertext IS NOT NULL AND tag IS NOT NULL)),
        CHECK (state <> 'written' OR written_at IS NOT NULL)
      );
      -- At most one capture waiting and one written credential per user and provider.
      CREATE UNIQUE INDEX credentials_one_vaulted ON credentials(owner, provider) WHERE state = 'vaulted';
      CREATE UNIQUE INDEX credentials_one_written ON credentials(owner, provider) WHERE state = 'written';
      CREATE INDEX credentials_by_owner ON credentials(owner, provider, created_at);

      -- Other sealed values (the browser VMs' proxy settings), same cipher, named.
      CREATE TABLE vault_settings (
        name TEXT PRIMARY KEY CHECK (name IN ('proxy')),
        format INTEGER NOT NULL,
        key_id TEXT NOT NULL,
        iv BLOB NOT NULL,
        ciphertext BLOB NOT NULL,
        tag BLOB NOT NULL,
        updated_at TEXT NOT NULL
      );
    `,
  },
  {
    version: 3,
    up: `
      -- Auth sessions (host-daemon/src/auth): a CLI's OAuth login run on a user's behalf. JSON columns hold the
      -- result (hashes and names, never contents) and the error.
      CREATE TABLE auth_sessions (
        id TEXT PRIMARY KEY,
        user TEXT NOT NULL,
        provider TEXT NOT NULL,
        mode TEXT NOT NULL CHECK (mode IN ('browser', 'headless')),
        state TEXT NOT NULL CHECK (state IN ('pending', 'vm_created', 'ready', 'awaiting_user_auth',
          'authenticating', 'completed', 'failed', 'timeout', 'cancelled')),
        started_by TEXT NOT NULL,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        deadline TEXT,
        browser_vm_id TEXT,
        cli_vm_id TEXT,
        cli_vm_name TEXT,
        authorize_url TEXT,
        user_code TEXT,
        awaiting_code INTEGER NOT NULL DEFAULT 0,
        result TEXT,
        error TEXT,
        retry_of TEXT REFERENCES auth_sessions(id),
        credential_id TEXT
      );
      -- One live session per user and provider.
      CREATE UNIQUE INDEX auth_sessions_one_live ON auth_sessions(user, provider)
        WHERE state NOT IN ('completed', 'failed', 'timeout', 'cancelled');
      CREATE INDEX auth_sessions_by_user ON auth_sessions(user, provider);

      -- Every move of every session, with its time, reason and actor; append-only.
      CREATE TABLE auth_transitions (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        session_id TEXT NOT NULL REFERENCES auth_sessions(id),
        state TEXT NOT NULL,
        at TEXT NOT NULL,
        reason TEXT,
        actor TEXT NOT NULL
      );
      CREATE INDEX auth_transitions_by_session ON auth_transitions(session_id, seq);
      CREATE TRIGGER auth_transitions_no_update BEFORE UPDATE ON auth_transitions
        BEGIN SELECT RAISE(ABORT, 'auth_transitions is append-only'); END;
      CREATE TRIGGER auth_transitions_no_delete BEFORE DELETE ON auth_transitions
        BEGIN SELECT RAISE(ABORT, 'auth_transitions is append-only'); END;
    `,
  },
  {
    version: 4,
    up: `
      -- audit.list pages the log newest first by (time, seq) keyset.
      CREATE INDEX audit_events_by_time ON audit_events(at, seq);
    `,
  },
];

/** The daemon's SQLite store inside its state dir. */
export function stateDbPath(stateDir: string): string {
  return path.join(stateDir, 'firedeck.db');
}

/** Opens (creating if needed) the daemon's SQLite store with WAL and foreign keys, and migrates it. */
export function openDb(file: string, steps: readonly Migration[] = migrations): Db {
  fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o750 });
  // Owner-only, whatever the umask or an older firedeckd left: it holds the audit log, session ids and the
  // vault's ciphertexts. SQLite gives the -wal and -shm files it creates the database file's mode.
  fs.closeSync(fs.openSync(file, 'a', 0o600));
  for (const f of [file, `${file}-wal`, `${file}-shm`]) if (fs.existsSync(f)) fs.chmodSync(f, 0o600);
  const db = new Database(file);
  db.pragma('journal_mode = WAL');
  db.pragma('foreign_keys = ON');
  db.pragma('busy_timeout = 5000');
  migrate(db, steps);
  return db;
}

export function schemaVersion(db: Db): number {
  const row = db.prepare('SELECT MAX(version) AS v FROM schema_version').get() as { v: number | null } | undefined;
  return row?.v ?? 0;
}

/** Applies every step above the current version, each in its own transaction, in order. */
export function migrate(db: Db, steps: readonly Migration[]): number {
  db.exec('CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)');
  const sorted = [...steps].sort((a, b) => a.version - b.version);
  sorted.forEach((step, i) => {
    if (step.version !== i + 1)
      throw new Error(`migrations must be numbered 1..n without gaps (found ${step.version})`);
  });
  const current = schemaVersion(db);
  if (current > sorted.length) {
    throw new Error(`store schema version ${current} is newer than this firedeckd knows (${sorted.length})`);
  }
  for (const step of sorted.slice(current)) {
    db.transaction(() => {
      db.exec(step.up);
      db.prepare('INSERT INTO schema_version (version, applied_at) VALUES (?, ?)').run(
        step.version,
        new Date().toISOString(),
      );
    })();
  }
  return schemaVersion(db);
}
