import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { FiredeckError } from '../../shared/errors';

/** Versioned schema steps; the store applies the ones it has not applied yet, each in a transaction. */
const migrations: readonly string[] = [
  `CREATE TABLE hosts (
     id TEXT PRIMARY KEY,
     name TEXT NOT NULL,
     address TEXT NOT NULL,
     port INTEGER NOT NULL,
     user TEXT NOT NULL,
     auth_type TEXT NOT NULL CHECK (auth_type IN ('agent', 'keyFile')),
     key_path TEXT,
     host_key TEXT,
     host_key_fingerprint TEXT,
     created_at TEXT NOT NULL,
     updated_at TEXT NOT NULL
   )`,
];

export type Db = Database.Database;

/** The app's own SQLite file in its data dir (hosts and pinned host keys). */
export function openLocalStore(dataDir: string): Db {
  let db: Db;
  try {
    fs.mkdirSync(dataDir, { recursive: true, mode: 0o700 });
    db = new Database(path.join(dataDir, 'firedeck.sqlite'));
    db.pragma('journal_mode = WAL');
    db.pragma('foreign_keys = ON');
    migrate(db);
  } catch (err) {
    // Without a readable trust store no host key can be checked, so nothing may connect.
    throw new FiredeckError('unavailable', `Cannot open the local store in ${dataDir}: ${(err as Error).message}`, {
      hint: 'Check that the app data directory is writable and not corrupted; move the file away to start fresh.',
      cause: err,
    });
  }
  return db;
}

export function migrate(db: Db): void {
  const version = db.pragma('user_version', { simple: true }) as number;
  if (version > migrations.length) {
    throw new Error(`store schema version ${version} is newer than this app (${migrations.length})`);
  }
  for (let v = version; v < migrations.length; v++) {
    db.transaction(() => {
      db.exec(migrations[v]!);
      db.pragma(`user_version = ${v + 1}`);
    })();
  }
}
