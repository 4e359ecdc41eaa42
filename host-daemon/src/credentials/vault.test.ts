import { createDecipheriv, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { inspect } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';
import { FiredeckError, type ErrorKind } from '../../../src/shared/errors';
import { openDb, type Db } from '../store/db';
import { filesBelow, spawnCrashChild, useCrashChild, useTempDirs } from './testing/childProcess';
import { Secret } from './secret';
import { CredentialVault, type RotationStep } from './vault';
import { vaultKey, vaultKeySource } from './vaultKey';

const child = useCrashChild();
const stateDir = useTempDirs('fdt-vault-');
const dbs: Db[] = [];
afterEach(() => {
  for (const db of dbs.splice(0)) if (db.open) db.close();
});

function db(dir: string): Db {
  const d = openDb(path.join(dir, 'firedeck.db'));
  dbs.push(d);
  return d;
}

interface Opened {
  vault: CredentialVault;
  db: Db;
  logs: string[];
}

function openVault(dir: string, key = vaultKeySource({ stateDir: dir })): Opened {
  const logs: string[] = [];
  const d = db(dir);
  return { vault: CredentialVault.open({ db: d, key, log: (l) => logs.push(l) }), db: d, logs };
}

/** A credential file shaped like Codex's auth.json, with fresh random tokens; `needle` is a token in it. */
function credential(): { secret: Secret; text: string; needle: string } {
  const needle = randomBytes(32).toString('base64url');
  const text = JSON.stringify({ tokens: { access_token: needle, refresh_token: randomBytes(32).toString('hex') } });
  return { secret: Secret.from(text), text, needle };
}

function caught(fn: () => unknown): FiredeckError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(FiredeckError);
    return err as FiredeckError;
  }
  throw new Error('expected a FiredeckError, nothing was thrown');
}

function expectRefused(fn: () => unknown, kind: ErrorKind, ...absent: string[]): FiredeckError {
  const err = caught(fn);
  expect(err.kind).toBe(kind);
  const shown = `${err.message} ${err.hint ?? ''} ${JSON.stringify(err.toJSON())} ${inspect(err)}`;
  for (const a of absent) expect(shown).not.toContain(a);
  return err;
}

function bytesOfStore(dir: string): Buffer {
  return Buffer.concat(filesBelow(dir).map((f) => fs.readFileSync(f)));
}

/** Whether any 16-byte piece of `blob` is in `bytes` (a shorter row written over a longer one leaves its tail). */
function holdsAnyPiece(bytes: Buffer, blob: Buffer): boolean {
  for (let at = 0; at + 16 <= blob.byteLength; at += 16) if (bytes.includes(blob.subarray(at, at + 16))) return true;
  return false;
}

describe('CredentialVault', () => {
  it('seals and opens a credential, with metadata that carries no plaintext', () => {
    const dir = stateDir();
    const { vault, logs } = openVault(dir);
    const c = credential();
    const rec = vault.put({ owner: 'alice@example.com', provider: 'codex', plaintext: c.secret, sessionId: 's-1' });
    expect(rec).toMatchObject({ owner: 'alice@example.com', provider: 'codex', state: 'vaulted', keyId: vault.keyId });
    expect(rec.sha256).toBe(c.secret.sha256());
    expect(rec.size).toBe(Buffer.byteLength(c.text));
    const opened = vault.open(rec.id);
    expect(opened.text()).toBe(c.text);
    expect(vault.live('alice@example.com', 'codex')?.id).toBe(rec.id);
    // The holders redact themselves wherever they might be printed.
    for (const shown of [
      String(opened),
      `${opened}`,
      JSON.stringify({ opened }),
      inspect(opened),
      JSON.stringify(rec),
    ]) {
      expect(shown).not.toContain(c.needle);
    }
    expect(inspect({ nested: { opened } })).toContain('redacted');
    expect(logs.join('\n')).toContain(rec.id);
    expect(logs.join('\n')).not.toContain(c.needle);
  });

  it('creates its key file 0600 once, and opens its records again after a restart', () => {
    const dir = stateDir();
    const first = openVault(dir);
    const keyFile = path.join(dir, 'vault.key');
    const st = fs.statSync(keyFile);
    expect(st.mode & 0o777).toBe(0o600);
    expect(st.size).toBe(32);
    const c = credential();
    const rec = first.vault.put({ owner: 'bob', provider: 'claude_code', plaintext: c.secret });
    first.db.close();
    const again = openVault(dir);
    expect(again.vault.keyId).toBe(first.vault.keyId);
    expect(again.vault.open(rec.id).text()).toBe(c.text);
  });

  it('creates exactly one key when several daemons start at once', async () => {
    for (let round = 0; round < 3; round++) {
      const dir = stateDir();
      const keyFile = path.join(dir, 'vault.key');
      const children = Array.from({ length: 4 }, () => spawnCrashChild(child(), ['key', keyFile]));
      await Promise.all(children.map((c) => c.waitForLine((l) => l === 'ready').catch(() => undefined)));
      // All children are blocked on stdin; release them together.
      for (const c of children) c.proc.stdin!.write('go\n');
      const lines = await Promise.all(children.map((c) => c.waitForLine((l) => l.startsWith('key '))));
      await Promise.all(children.map((c) => c.exited));
      const ids = new Set(lines.map((l) => l.split(' ')[1]));
      expect(ids.size).toBe(1);
      expect(lines.filter((l) => l.endsWith(' created'))).toHaveLength(1);
      expect(vaultKey(fs.readFileSync(keyFile)).id).toBe([...ids][0]);
      expect(fs.statSync(keyFile).mode & 0o777).toBe(0o600);
      expect(fs.readdirSync(dir)).toEqual(['vault.key']);
    }
  });

  it('refuses a key file that others may read, and a managed key file that is a symlink', () => {
    const dir = stateDir();
    openVault(dir).db.close();
    const keyFile = path.join(dir, 'vault.key');
    fs.chmodSync(keyFile, 0o644);
    expectRefused(() => openVault(dir), 'permission_denied');
    fs.chmodSync(keyFile, 0o600);
    fs.renameSync(keyFile, path.join(dir, 'real.key'));
    fs.symlinkSync(path.join(dir, 'real.key'), keyFile);
    expectRefused(() => openVault(dir), 'permission_denied');
  });

  it('refuses a configured key file that is missing instead of making a new key', () => {
    const dir = stateDir();
    const source = vaultKeySource({ stateDir: dir, keyFile: path.join(dir, 'elsewhere.key') });
    expectRefused(() => openVault(dir, source), 'unavailable');
    expect(fs.existsSync(path.join(dir, 'elsewhere.key'))).toBe(false);
  });

  describe('refuses tampered or moved records', () => {
    function tamper(mutate: (db: Db, id: string) => void): { err: FiredeckError; needle: string; id: string } {
      const dir = stateDir();
      const { vault, db: d } = openVault(dir);
      const c = credential();
      const rec = vault.put({ owner: 'carol', provider: 'codex', plaintext: c.secret });
      mutate(d, rec.id);
      const id = (d.prepare('SELECT id FROM credentials').get() as { id: string }).id;
      const err = expectRefused(() => vault.open(id), 'integrity', c.needle, c.text);
      expect(err.message).toContain(id);
      return { err, needle: c.needle, id };
    }
    const flip = (b: Buffer, at = 0): Buffer => {
      const copy = Buffer.from(b);
      copy[at] = copy[at]! ^ 0x01;
      return copy;
    };
    const blob = (d: Db, id: string, col: string): Buffer =>
      (d.prepare(`SELECT ${col} AS v FROM credentials WHERE id = ?`).get(id) as { v: Buffer }).v;
    const set = (d: Db, id: string, col: string, v: unknown): void => {
      d.prepare(`UPDATE credentials SET ${col} = ? WHERE id = ?`).run(v, id);
    };

    it.each([
      ['a bit of the ciphertext', (d: Db, id: string) => set(d, id, 'ciphertext', flip(blob(d, id, 'ciphertext'), 5))],
      [
        'the ciphertext cut short',
        (d: Db, id: string) => set(d, id, 'ciphertext', blob(d, id, 'ciphertext').subarray(1)),
      ],
      ['a bit of the IV', (d: Db, id: string) => set(d, id, 'iv', flip(blob(d, id, 'iv'), 11))],
      ['the IV cut short', (d: Db, id: string) => set(d, id, 'iv', blob(d, id, 'iv').subarray(0, 8))],
      ['a bit of the tag', (d: Db, id: string) => set(d, id, 'tag', flip(blob(d, id, 'tag'), 15))],
      ['the tag truncated to 4 bytes', (d: Db, id: string) => set(d, id, 'tag', blob(d, id, 'tag').subarray(0, 4))],
      ['the owner (AAD)', (d: Db, id: string) => set(d, id, 'owner', 'mallory')],
      ['the provider (AAD)', (d: Db, id: string) => set(d, id, 'provider', 'gemini_cli')],
      ['the hash (AAD)', (d: Db, id: string) => set(d, id, 'sha256', 'a'.repeat(64))],
      ['the format version (AAD)', (d: Db, id: string) => set(d, id, 'format', 2)],
      ['the id (AAD)', (d: Db, id: string) => set(d, id, 'id', 'cred-00000000000000ff')],
    ])('%s', (_what, mutate) => {
      tamper(mutate);
    });

    it('a record swapped into another row (id, owner or provider)', () => {
      const dir = stateDir();
      const { vault, db: d } = openVault(dir);
      const a = credential();
      const b = credential();
      const ra = vault.put({ owner: 'alice', provider: 'codex', plaintext: a.secret });
      const rb = vault.put({ owner: 'bob', provider: 'codex', plaintext: b.secret });
      const rc = vault.put({ owner: 'alice', provider: 'gemini_cli', plaintext: credential().secret });
      // Alice's blobs copied into Bob's row, then into her own Gemini row.
      for (const target of [rb.id, rc.id]) {
        d.prepare(
          `UPDATE credentials SET (iv, ciphertext, tag, sha256, size) =
             (SELECT iv, ciphertext, tag, sha256, size FROM credentials WHERE id = @from) WHERE id = @to`,
        ).run({ from: ra.id, to: target });
        expectRefused(() => vault.open(target), 'integrity', a.needle, b.needle);
      }
      // The untouched record still opens.
      expect(vault.open(ra.id).text()).toBe(a.text);
    });
  });

  it('refuses records under another key: a replaced key file, or a forged key id', () => {
    const dir = stateDir();
    const first = openVault(dir);
    const c = credential();
    const rec = first.vault.put({ owner: 'dave', provider: 'codex', plaintext: c.secret });
    const oldId = first.vault.keyId;
    first.db.close();
    fs.rmSync(path.join(dir, 'vault.key'));
    const second = openVault(dir);
    expect(second.vault.keyId).not.toBe(oldId);
    expect(second.vault.status().unreadable).toEqual([rec.id]);
    expect(second.logs.join('\n')).toContain(rec.id);
    expectRefused(() => second.vault.open(rec.id), 'unavailable', c.needle);
    second.db.prepare('UPDATE credentials SET key_id = ?').run(second.vault.keyId);
    expectRefused(() => second.vault.open(rec.id), 'integrity', c.needle);
  });

  it('keeps one live copy: a new capture drops an unwritten one, a write drops the vault copy', () => {
    const dir = stateDir();
    const { vault, db: d } = openVault(dir);
    const first = vault.put({ owner: 'erin', provider: 'claude_code', plaintext: credential().secret });
    const firstBlob = (d.prepare('SELECT ciphertext FROM credentials').get() as { ciphertext: Buffer }).ciphertext;
    const second = vault.put({ owner: 'erin', provider: 'claude_code', plaintext: credential().secret });
    expect(holdsAnyPiece(bytesOfStore(dir), firstBlob)).toBe(false);
    expect(vault.get(first.id)).toMatchObject({ state: 'superseded', keyId: null });
    expectRefused(() => vault.open(first.id), 'invalid_state');
    d.prepare(
      "INSERT INTO vms (id, name, kind, owner, image, driver, vcpus, memory_mib, disk_mib, state, created_at, updated_at) VALUES ('vm-00000001', 'erin-cli', 'cli', 'erin', 'cli', 'qemu', 1, 256, 4096, 'stopped', 'x', 'x')",
    ).run();
    const blobOf = (id: string): Buffer =>
      (d.prepare('SELECT ciphertext FROM credentials WHERE id = ?').get(id) as { ciphertext: Buffer }).ciphertext;
    const secondBlob = blobOf(second.id);
    expect(bytesOfStore(dir).includes(secondBlob)).toBe(true);
    expectRefused(() => vault.markWritten(second.id, 'vm-0000000f'), 'not_found');
    expect(vault.get(second.id).state).toBe('vaulted');
    const written = vault.markWritten(second.id, 'vm-00000001');
    // The dropped copy is gone from the file and the WAL, not only from the row.
    expect(holdsAnyPiece(bytesOfStore(dir), secondBlob)).toBe(false);
    expect(written).toMatchObject({ state: 'written', targetVmId: 'vm-00000001', keyId: null });
    expect(written.writtenAt).not.toBeNull();
    expectRefused(() => vault.open(second.id), 'invalid_state');
    expect(
      (d.prepare('SELECT ciphertext FROM credentials WHERE id = ?').get(second.id) as { ciphertext: null }).ciphertext,
    ).toBeNull();
    const third = vault.put({ owner: 'erin', provider: 'claude_code', plaintext: credential().secret });
    expect(vault.live('erin', 'claude_code')?.id).toBe(third.id);
    vault.markWritten(third.id, 'vm-00000001');
    expect(vault.get(second.id).state).toBe('superseded');
    expect(vault.list({ owner: 'erin', state: 'written' }).map((r) => r.id)).toEqual([third.id]);
    expectRefused(() => vault.markWritten(third.id, 'vm-00000001'), 'invalid_state');
    expectRefused(() => vault.get('cred-0000000000000000'), 'not_found');
    expectRefused(
      () => vault.put({ owner: '../x', provider: 'codex', plaintext: credential().secret }),
      'invalid_params',
    );
    expectRefused(
      () => vault.put({ owner: 'x', provider: 'Codex!', plaintext: credential().secret }),
      'invalid_params',
    );
    expectRefused(() => vault.put({ owner: 'x', provider: 'codex', plaintext: Secret.from('') }), 'invalid_params');
  });

  describe('key rotation', () => {
    function seeded(dir: string, n = 6): { opened: Opened; expected: Map<string, string> } {
      const opened = openVault(dir);
      const expected = new Map<string, string>();
      for (let i = 0; i < n; i++) {
        const c = credential();
        expected.set(opened.vault.put({ owner: `user${i}`, provider: 'codex', plaintext: c.secret }).id, c.text);
      }
      opened.vault.putProxy({ https: `http://u:${randomBytes(8).toString('hex')}@proxy.internal:3128` });
      return { opened, expected };
    }

    function expectAllOpen(vault: CredentialVault, expected: Map<string, string>): void {
      for (const [id, text] of expected) expect(vault.open(id).text()).toBe(text);
      expect(vault.getProxy()).not.toBeNull();
      expect(vault.status().unreadable).toEqual([]);
    }

    it('re-seals every record under a new key; the old key opens none of them', () => {
      const dir = stateDir();
      const { opened, expected } = seeded(dir);
      const { vault, db: d } = opened;
      const oldKey = vaultKey(Buffer.from(fs.readFileSync(path.join(dir, 'vault.key'))));
      const oldBlobs = (d.prepare('SELECT ciphertext FROM credentials').all() as { ciphertext: Buffer }[]).map(
        (r) => r.ciphertext,
      );
      const { keyId, resealed } = vault.rotateKey();
      expect(resealed).toBe(expected.size + 1);
      expect(keyId).not.toBe(oldKey.id);
      expect(vaultKey(fs.readFileSync(path.join(dir, 'vault.key'))).id).toBe(keyId);
      expect(fs.existsSync(path.join(dir, 'vault.key.next'))).toBe(false);
      expectAllOpen(vault, expected);
      const rows = d.prepare('SELECT * FROM credentials').all() as {
        id: string;
        owner: string;
        provider: string;
        sha256: string;
        key_id: string;
        iv: Buffer;
        ciphertext: Buffer;
        tag: Buffer;
      }[];
      for (const r of rows) {
        expect(r.key_id).toBe(keyId);
        // The old key, with the right associated data, fails the tag of every re-sealed record.
        const decipher = createDecipheriv('aes-256-gcm', oldKey.bytes, r.iv, { authTagLength: 16 });
        decipher.setAAD(
          Buffer.from(JSON.stringify(['firedeck-vault', 1, 'credential', r.id, r.owner, r.provider, r.sha256])),
        );
        decipher.setAuthTag(r.tag);
        decipher.update(r.ciphertext);
        expect(() => decipher.final()).toThrow();
      }
      // The old ciphertexts are gone from the file and its WAL at once (not only when the connection closes).
      const bytes = bytesOfStore(dir);
      for (const b of oldBlobs) expect(holdsAnyPiece(bytes, b)).toBe(false);
      // A vault holding only the old key opens nothing.
      d.close();
      const withOld = openVault(dir, { kind: 'config', current: oldKey.bytes.toString('base64') });
      for (const id of expected.keys()) expectRefused(() => withOld.vault.open(id), 'unavailable');
    });

    const steps: RotationStep[] = ['staging', 'staged', 'resealed-one', 'committed', 'promoted'];
    it.each(steps)('a rotation that fails at step %s leaves every record readable', (failAt) => {
      const dir = stateDir();
      const { opened, expected } = seeded(dir);
      const before = opened.vault.keyId;
      expect(() =>
        opened.vault.rotateKey({
          onStep: (s) => {
            if (s === failAt) throw new Error(`injected failure at ${s}`);
          },
        }),
      ).toThrow(/injected/);
      // The same vault still opens everything, and so does a restarted one, which settles the key files.
      expectAllOpen(opened.vault, expected);
      opened.db.close();
      const again = openVault(dir);
      expectAllOpen(again.vault, expected);
      expect(fs.existsSync(path.join(dir, 'vault.key.next'))).toBe(false);
      expect(again.vault.keyId === before).toBe(['staging', 'staged', 'resealed-one'].includes(failAt));
      again.vault.rotateKey();
      expectAllOpen(again.vault, expected);
    });

    it('a rotating daemon killed with SIGKILL at each step, or at random moments, loses no record', async () => {
      const dir = stateDir();
      const { opened, expected } = seeded(dir, 40);
      opened.db.close();
      const settle = (): string => {
        const again = openVault(dir);
        expectAllOpen(again.vault, expected);
        expect(fs.readdirSync(dir).filter((n) => n.startsWith('vault.key'))).toEqual(['vault.key']);
        again.db.close();
        const line = again.logs.find((l) => /interrupted/.test(l)) ?? '';
        return line.includes('finished') ? 'finished' : line.includes('discarded') ? 'discarded' : 'clean';
      };
      // Killed exactly at each step of the second rotation: before the commit the staged key is dropped, after
      // it the rename is finished.
      const outcome: Record<RotationStep, string> = {
        // The new key is written but not yet published as vault.key.next: only its temp file is left.
        staging: 'clean',
        staged: 'discarded',
        'resealed-one': 'discarded',
        committed: 'finished',
        promoted: 'clean',
      };
      for (const step of steps) {
        const c = spawnCrashChild(child(), ['rotate', dir, step, '2']);
        const { signal } = await c.exited;
        expect(signal).toBe('SIGKILL');
        expect(c.lines.at(-1)).toBe(`step 2 ${step}`);
        expect(settle()).toBe(outcome[step]);
      }
      // And at random moments while it rotates as fast as it can: half anywhere, half just as a rotation begins
      // (when the new key is being staged).
      const seen: string[] = [];
      for (let round = 0; round < 16; round++) {
        const c = spawnCrashChild(child(), ['rotate', dir, '-', '0']);
        if (round % 2 === 0) {
          await c.waitForLine((l) => l.startsWith('open '));
          await new Promise((r) => setTimeout(r, Math.random() * 60));
        } else {
          await c.waitForLine((l) => l.startsWith(`rotated ${1 + (round % 3)} `));
          await new Promise((r) => setTimeout(r, Math.random() * 3));
        }
        await c.killGroup();
        seen.push(`${c.lines.at(-1) ?? ''} -> ${settle()}`);
      }
      expect(seen).toHaveLength(16);
      // 21 daemons started and killed: about 20 s on an idle two-core machine, far more beside the guest suites.
    }, 180_000);
  });

  describe('configured keys', () => {
    it('re-seals records under a previous configured key when the configuration rotates', () => {
      const dir = stateDir();
      const k1 = randomBytes(32).toString('base64');
      const k2 = randomBytes(32).toString('base64');
      const first = openVault(dir, vaultKeySource({ stateDir: dir, keyBase64: k1 }));
      expect(fs.existsSync(path.join(dir, 'vault.key'))).toBe(false);
      const c = credential();
      const rec = first.vault.put({ owner: 'frank', provider: 'codex', plaintext: c.secret });
      expectRefused(() => first.vault.rotateKey(), 'invalid_state');
      first.db.close();
      const second = openVault(dir, vaultKeySource({ stateDir: dir, keyBase64: k2, previousKeysBase64: [k1] }));
      expect(second.logs.join('\n')).toMatch(/re-sealed 1 records/);
      expect(second.vault.get(rec.id).keyId).toBe(second.vault.keyId);
      second.db.close();
      const third = openVault(dir, vaultKeySource({ stateDir: dir, keyBase64: k2 }));
      expect(third.vault.open(rec.id).text()).toBe(c.text);
    });

    it('refuses a malformed key without echoing it', () => {
      const dir = stateDir();
      const bad = 'not-a-key-' + randomBytes(6).toString('hex');
      expectRefused(() => openVault(dir, vaultKeySource({ stateDir: dir, keyBase64: bad })), 'invalid_params', bad);
      expectRefused(() => vaultKeySource({ stateDir: dir, keyBase64: 'x', keyFile: '/k' }), 'invalid_params');
    });
  });

  describe('proxy settings', () => {
    it('seals them, shows them redacted, and refuses bad ones without echoing them', () => {
      const dir = stateDir();
      const { vault, db: d, logs } = openVault(dir);
      const password = randomBytes(12).toString('hex');
      expect(vault.getProxy()).toBeNull();
      vault.putProxy({ http: `http://fd:${password}@proxy.internal:3128`, noProxy: ['localhost', '10.0.0.0/8'] });
      const back = vault.getProxy()!;
      expect(back.reveal()).toEqual({
        http: `http://fd:${password}@proxy.internal:3128`,
        https: null,
        noProxy: ['localhost', '10.0.0.0/8'],
      });
      expect(back.redacted().http).toBe('http://***@proxy.internal:3128');
      for (const shown of [JSON.stringify(back), String(back), inspect(back), logs.join('\n')]) {
        expect(shown).not.toContain(password);
      }
      const secretUrl = `http://u:${password}@host:1/ bad`;
      expectRefused(() => vault.putProxy({ https: secretUrl }), 'invalid_params', password);
      expectRefused(() => vault.putProxy({ http: `ftp://u:${password}@h:21` }), 'invalid_params', password);
      expectRefused(() => vault.putProxy({ http: `http://u:${password}@h:1\nX=1` }), 'invalid_params', password);
      expectRefused(() => vault.putProxy({ noProxy: ['a b'] }), 'invalid_params');
      d.prepare('UPDATE vault_settings SET ciphertext = zeroblob(length(ciphertext))').run();
      expectRefused(() => vault.getProxy(), 'integrity', password);
      vault.clearProxy();
      expect(vault.getProxy()).toBeNull();
    });
  });

  it('leaves no plaintext in the SQLite file, its WAL, the logs or the errors', () => {
    const dir = stateDir();
    const { vault, db: d, logs } = openVault(dir);
    const secrets = Array.from({ length: 5 }, () => credential());
    const password = randomBytes(16).toString('hex');
    const errors: string[] = [];
    const ids = secrets.map((c, i) => vault.put({ owner: `u${i}`, provider: 'gemini_cli', plaintext: c.secret }).id);
    vault.putProxy({ http: `http://user:${password}@p.internal:8080` });
    for (const id of ids) expect(vault.open(id).size).toBeGreaterThan(0);
    vault.rotateKey();
    d.prepare("UPDATE credentials SET provider = 'codex' WHERE id = ?").run(ids[0]);
    const err = caught(() => vault.open(ids[0]!));
    errors.push(err.message, err.hint ?? '', JSON.stringify(err), inspect(err));
    // The WAL holds the latest pages until the next checkpoint: read both while the connection is open.
    expect(fs.existsSync(path.join(dir, 'firedeck.db-wal'))).toBe(true);
    const bytes = bytesOfStore(dir);
    const ciphertexts = d.prepare('SELECT ciphertext FROM credentials').all() as { ciphertext: Buffer }[];
    // The search is meaningful: the ciphertexts are in those bytes, the plaintexts are not.
    for (const { ciphertext } of ciphertexts) expect(bytes.includes(ciphertext)).toBe(true);
    const haystacks = [bytes.toString('latin1'), logs.join('\n'), errors.join('\n')];
    for (const needle of [...secrets.flatMap((c) => [c.needle, c.text]), password]) {
      for (const h of haystacks) expect(h.includes(needle)).toBe(false);
    }
  });
});
