import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { fingerprintOf } from '../ssh/hostKey';
import { HostRegistry } from './hostRegistry';
import { openLocalStore, type Db } from './localStore';

describe('host registry in the local SQLite store', () => {
  let dir: string;
  let db: Db;
  let registry: HostRegistry;
  const input = {
    name: 'h1',
    address: '10.0.0.5',
    port: 22,
    user: 'root',
    auth: { type: 'keyFile' as const, path: '/k' },
  };
  const key = { key: Buffer.from('blob').toString('base64'), fingerprint: 'SHA256:abc' };

  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'firedeck-store-'));
    db = openLocalStore(dir);
    registry = new HostRegistry(db);
  });
  afterEach(() => {
    db.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('migrates a fresh file and reopens it without migrating again', () => {
    expect(db.pragma('user_version', { simple: true })).toBe(1);
    registry.add(input);
    db.close();
    db = openLocalStore(dir);
    expect(new HostRegistry(db).list()).toHaveLength(1);
  });

  it('adds, pins a host key and keeps the pin across edits of the same endpoint', () => {
    const h = registry.add(input);
    expect(h.id).toMatch(/^h-[0-9a-f]{16}$/);
    expect(h.pinnedKey).toBeNull();
    registry.pinHostKey(h.id, key);
    expect(registry.get(h.id).pinnedKey).toEqual(key);
    registry.update(h.id, { ...input, name: 'renamed', user: 'admin' });
    expect(registry.get(h.id)).toMatchObject({ name: 'renamed', user: 'admin', hostKeyFingerprint: 'SHA256:abc' });
  });

  it('drops the pin when the address or port changes', () => {
    const h = registry.add(input);
    registry.pinHostKey(h.id, key);
    registry.update(h.id, { ...input, port: 2222 });
    expect(registry.get(h.id).pinnedKey).toBeNull();
  });

  it('keeps a pinned key whose stored fingerprint is missing pinned (derived again), never back to first use', () => {
    const h = registry.add(input);
    registry.pinHostKey(h.id, key);
    db.prepare('UPDATE hosts SET host_key_fingerprint = NULL WHERE id = ?').run(h.id);
    const expected = fingerprintOf(Buffer.from('blob'));
    expect(registry.get(h.id).pinnedKey).toEqual({ key: key.key, fingerprint: expected });
    expect(registry.get(h.id).hostKeyFingerprint).toBe(expected);
  });

  it('keeps a key file path as the operator wrote it (~/ is expanded when it is read)', () => {
    expect(registry.add({ ...input, name: 'home', auth: { type: 'keyFile', path: '~/.ssh/id_ed25519' } }).auth).toEqual(
      {
        type: 'keyFile',
        path: '~/.ssh/id_ed25519',
      },
    );
  });

  it('reports unknown hosts', () => {
    expect(() => registry.get('h-0000000000000000')).toThrow(/No host/);
    expect(() => registry.remove('h-0000000000000000')).toThrow(/No host/);
  });

  it('refuses to open a store whose file is not a database', () => {
    const bad = fs.mkdtempSync(path.join(os.tmpdir(), 'firedeck-store-bad-'));
    fs.writeFileSync(path.join(bad, 'firedeck.sqlite'), 'this is not sqlite'.repeat(100));
    try {
      expect(() => openLocalStore(bad)).toThrow(/Cannot open the local store/);
    } finally {
      fs.rmSync(bad, { recursive: true, force: true });
    }
  });
});
