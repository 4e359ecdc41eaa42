import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { migrate, migrations, openDb, schemaVersion } from './db';

const dirs: string[] = [];
function tempFile(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'firedeck-db-'));
  dirs.push(dir);
  return path.join(dir, 'firedeck.db');
}
afterEach(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

describe('store migrations', () => {
  it('opens in WAL mode with foreign keys and the latest schema', () => {
    const db = openDb(tempFile());
    expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
    expect(db.pragma('foreign_keys', { simple: true })).toBe(1);
    expect(schemaVersion(db)).toBe(migrations.length);
    db.close();
  });

  it('keeps the store and its -wal and -shm files owner-only, also one left group- and world-readable', () => {
    const file = tempFile();
    fs.writeFileSync(file, '', { mode: 0o644 });
    fs.chmodSync(file, 0o644);
    const db = openDb(file);
    db.prepare('INSERT INTO audit_events (at, user, uid, method, params, ok) VALUES (?, ?, ?, ?, ?, ?)').run(
      'now',
      'root',
      0,
      'vm.create',
      '{}',
      1,
    );
    for (const f of [file, `${file}-wal`, `${file}-shm`]) expect(fs.statSync(f).mode & 0o777, f).toBe(0o600);
    db.close();
  });

  it('applies only the steps above the current version, and is idempotent', () => {
    const file = tempFile();
    const db = openDb(file, migrations.slice(0, 1));
    expect(schemaVersion(db)).toBe(1);
    const extra = [...migrations, { version: migrations.length + 1, up: 'CREATE TABLE extra (x INTEGER)' }];
    expect(migrate(db, extra)).toBe(migrations.length + 1);
    expect(migrate(db, extra)).toBe(migrations.length + 1);
    db.prepare('INSERT INTO extra (x) VALUES (1)').run();
    db.close();
  });

  it('refuses a store newer than the code and migrations with gaps', () => {
    const db = openDb(tempFile());
    expect(() => migrate(db, [])).toThrow(/newer than this firedeckd/);
    expect(() => migrate(db, [{ version: 2, up: '' }])).toThrow(/without gaps/);
    db.close();
  });

  it('rolls a failing step back whole', () => {
    const db = openDb(tempFile());
    const bad = [...migrations, { version: migrations.length + 1, up: 'CREATE TABLE t1 (x); SELECT * FROM nope;' }];
    expect(() => migrate(db, bad)).toThrow();
    expect(schemaVersion(db)).toBe(migrations.length);
    expect(db.prepare("SELECT name FROM sqlite_master WHERE name = 't1'").get()).toBeUndefined();
    db.close();
  });

  it('keeps the audit log append-only', () => {
    const db = openDb(tempFile());
    db.prepare(
      "INSERT INTO audit_events (at, user, uid, method, params, ok) VALUES ('2026-01-01T00:00:00Z', 'u', 1, 'vm.create', '{}', 1)",
    ).run();
    expect(() => db.prepare("UPDATE audit_events SET user = 'x'").run()).toThrow(/append-only/);
    expect(() => db.prepare('DELETE FROM audit_events').run()).toThrow(/append-only/);
    db.close();
  });
});
