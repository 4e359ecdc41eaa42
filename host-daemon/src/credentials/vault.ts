import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import type { Statement } from 'better-sqlite3';
import { z } from 'zod';
import { FiredeckError } from '../../../src/shared/errors';
import { OwnerId } from '../../../src/shared/protocol/common';
import { statementCache, type Db } from '../store/db';
import { ProxySettings, type ProxySettingsInput } from './proxySettings';
import { Secret } from './secret';
import {
  keyFileRotation,
  keyFromBase64,
  loadOrCreateKeyFile,
  newVaultKey,
  readKeyFile,
  type VaultKey,
  type VaultKeySource,
} from './vaultKey';

/** The record format: AES-256-GCM, 96-bit IV, 128-bit tag, associated data as below. Bump it, never edit it. */
export const VAULT_FORMAT = 1;
const IV_BYTES = 12;
const TAG_BYTES = 16;
const MAX_PLAINTEXT = 1024 * 1024;

/**
 * vaulted: sealed here, waiting to be written into the owner's CLI VM;
 * written: in the CLI VM, verified; the vault dropped its copy (a copy is a move: Codex and Claude Code rotate
 *   single-use refresh tokens, so a second copy would only ever be a stale one to clobber the live one with);
 * superseded: replaced by a newer capture or a newer write; kept as metadata for the record.
 */
export const CredentialState = z.enum(['vaulted', 'written', 'superseded']);
export type CredentialState = z.infer<typeof CredentialState>;

const CredentialId = z.string().regex(/^cred-[0-9a-f]{16}$/);
/** A provider id as the providers table names it (`codex`, `claude_code`, `gemini_cli`, `selftest`). */
const ProviderId = z.string().regex(/^[a-z][a-z0-9_]{0,31}$/);

/**
 * A credential's metadata: everything but the plaintext, safe to log, to put in events and to show.
 * `sha256` is the plaintext's hash, kept to verify a transfer (read back with sha256sum in the VM, or debugfs
 * offline). It is safe to store and show because every credential file holds high-entropy tokens (OAuth
 * access and refresh tokens, 128+ bits): the hash reveals only whether two copies are equal, and cannot be
 * searched back to its input. (A low-entropy secret could be guessed from its hash: the proxy settings, whose
 * password may be short, get no hash.)
 */
export interface CredentialRecord {
  id: string;
  owner: string;
  provider: string;
  state: CredentialState;
  sha256: string;
  size: number;
  /** Id of the key that seals it; null once the vault no longer holds the ciphertext. */
  keyId: string | null;
  sessionId: string | null;
  targetVmId: string | null;
  createdAt: string;
  updatedAt: string;
  writtenAt: string | null;
}

export interface NewCredential {
  owner: string;
  provider: string;
  plaintext: Secret;
  /** The auth session that captured it. */
  sessionId?: string;
}

export interface VaultStatus {
  keyId: string;
  keySource: VaultKeySource['kind'];
  sealed: number;
  /** Records sealed under a key the vault does not hold (a lost or replaced key file): they cannot be opened. */
  unreadable: string[];
}

/** Steps of a rotation, reported to `onStep` (tests use it to fail or die at each one). */
export type RotationStep = 'staging' | 'staged' | 'resealed-one' | 'committed' | 'promoted';

export interface VaultOptions {
  db: Db;
  key: VaultKeySource;
  /** One line per event: ids, owners, providers, states, counts and key ids, never contents. */
  log?: (line: string) => void;
  now?: () => Date;
}

const RowSchema = z.object({
  id: z.string(),
  owner: z.string(),
  provider: z.string(),
  state: CredentialState,
  format: z.number().int(),
  key_id: z.string().nullable(),
  iv: z.instanceof(Buffer).nullable(),
  ciphertext: z.instanceof(Buffer).nullable(),
  tag: z.instanceof(Buffer).nullable(),
  sha256: z.string(),
  size: z.number().int(),
  session_id: z.string().nullable(),
  target_vm_id: z.string().nullable(),
  created_at: z.string(),
  updated_at: z.string(),
  written_at: z.string().nullable(),
});
type Row = z.infer<typeof RowSchema>;

const SettingRowSchema = z.object({
  name: z.string(),
  format: z.number().int(),
  key_id: z.string(),
  iv: z.instanceof(Buffer),
  ciphertext: z.instanceof(Buffer),
  tag: z.instanceof(Buffer),
  updated_at: z.string(),
});

interface Sealed {
  keyId: string;
  iv: Buffer;
  ciphertext: Buffer;
  tag: Buffer;
}

/**
 * Binds a ciphertext to where it belongs: moving a record's blobs to another id, owner or provider, editing its
 * hash or its format, all fail the tag check. JSON of an array is unambiguous, unlike joined strings.
 */
function credentialAad(r: { id: string; owner: string; provider: string; sha256: string }, format: number): Buffer {
  return Buffer.from(JSON.stringify(['firedeck-vault', format, 'credential', r.id, r.owner, r.provider, r.sha256]));
}

function settingAad(name: string, format: number): Buffer {
  return Buffer.from(JSON.stringify(['firedeck-vault', format, 'setting', name]));
}

function seal(key: VaultKey, plaintext: Buffer, aad: Buffer): Sealed {
  const iv = randomBytes(IV_BYTES);
  const cipher = createCipheriv('aes-256-gcm', key.bytes, iv, { authTagLength: TAG_BYTES });
  cipher.setAAD(aad);
  const ciphertext = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  return { keyId: key.id, iv, ciphertext, tag: cipher.getAuthTag() };
}

/** Throws (without detail) when the tag does not match; the unauthenticated output is wiped, never returned. */
function unseal(key: VaultKey, sealed: Sealed, aad: Buffer): Buffer {
  if (sealed.iv.byteLength !== IV_BYTES || sealed.tag.byteLength !== TAG_BYTES) throw new Error('bad sizes');
  const decipher = createDecipheriv('aes-256-gcm', key.bytes, sealed.iv, { authTagLength: TAG_BYTES });
  decipher.setAAD(aad);
  decipher.setAuthTag(sealed.tag);
  const head = decipher.update(sealed.ciphertext);
  try {
    const tail = decipher.final();
    const out = Buffer.alloc(head.byteLength + tail.byteLength);
    head.copy(out);
    tail.copy(out, head.byteLength);
    return out;
  } finally {
    head.fill(0);
  }
}

/**
 * The credential vault: captured credentials and the browser VMs' proxy settings, sealed with AES-256-GCM in the
 * daemon's SQLite store. Plaintext goes in and out only as `Secret`s; logs and errors name record ids.
 */
export class CredentialVault {
  private readonly db: Db;
  private readonly q: (sql: string) => Statement;
  private readonly log: (line: string) => void;
  private readonly now: () => Date;
  private readonly source: VaultKeySource;
  /** Every key the vault can open records with, by id; `current` seals. */
  private readonly keys = new Map<string, VaultKey>();
  private current: VaultKey;

  private constructor(options: VaultOptions, current: VaultKey, others: readonly VaultKey[]) {
    this.db = options.db;
    this.q = statementCache(options.db);
    this.log = options.log ?? (() => undefined);
    this.now = options.now ?? (() => new Date());
    this.source = options.key;
    this.current = current;
    for (const k of [current, ...others]) this.keys.set(k.id, k);
  }

  /**
   * Opens the vault: loads (or, for the default key file, creates) the key, finishes or discards a rotation that
   * a crash interrupted, and re-seals records under a configured previous key with the current one.
   */
  static open(options: VaultOptions): CredentialVault {
    const log = options.log ?? (() => undefined);
    let vault: CredentialVault;
    if (options.key.kind === 'file') {
      const file = options.key.path;
      settleRotation(options.db, file, log);
      let key: VaultKey;
      if (options.key.create) {
        const loaded = loadOrCreateKeyFile(file);
        if (loaded.created) log(`vault: created key ${loaded.key.id} in ${file}`);
        key = loaded.key;
      } else {
        key = readKeyFile(file, false);
      }
      vault = new CredentialVault(options, key, []);
    } else {
      const current = keyFromBase64(options.key.current, 'configured vault key');
      const previous = (options.key.previous ?? []).map((v, i) => keyFromBase64(v, `previous vault key #${i + 1}`));
      vault = new CredentialVault(options, current, previous);
      const moved = vault.resealAll(() => undefined);
      if (moved > 0) log(`vault: re-sealed ${moved} records under the configured key ${current.id}`);
    }
    const status = vault.status();
    if (status.unreadable.length > 0) {
      log(
        `vault: ${status.unreadable.length} records are sealed under keys this vault does not hold ` +
          `(${status.unreadable.join(', ')}); their owners must log in again`,
      );
    }
    return vault;
  }

  get keyId(): string {
    return this.current.id;
  }

  status(): VaultStatus {
    const rows = this.q("SELECT id, key_id FROM credentials WHERE state = 'vaulted'").all() as {
      id: string;
      key_id: string;
    }[];
    const settings = this.q('SELECT name, key_id FROM vault_settings').all() as { name: string; key_id: string }[];
    return {
      keyId: this.current.id,
      keySource: this.source.kind,
      sealed: rows.length + settings.length,
      unreadable: [
        ...rows.filter((r) => !this.keys.has(r.key_id)).map((r) => r.id),
        ...settings.filter((s) => !this.keys.has(s.key_id)).map((s) => `setting:${s.name}`),
      ],
    };
  }

  /** Seals a captured credential as the owner's live one for the provider; an older unwritten capture is dropped. */
  put(input: NewCredential): CredentialRecord {
    const owner = parseOrThrow(OwnerId, input.owner, 'owner');
    const provider = parseOrThrow(ProviderId, input.provider, 'provider');
    const plaintext = input.plaintext.bytes();
    if (plaintext.byteLength === 0 || plaintext.byteLength > MAX_PLAINTEXT) {
      throw new FiredeckError('invalid_params', `A credential must hold 1 byte to 1 MiB (got ${plaintext.byteLength})`);
    }
    const id = `cred-${randomBytes(8).toString('hex')}`;
    const sha256 = input.plaintext.sha256();
    const now = this.now().toISOString();
    const sealed = seal(this.current, plaintext, credentialAad({ id, owner, provider, sha256 }, VAULT_FORMAT));
    let dropped: { id: string }[] = [];
    this.secureWrite(() => {
      dropped = this.q(
        `UPDATE credentials SET state = 'superseded', key_id = NULL, iv = NULL, ciphertext = NULL, tag = NULL,
           updated_at = @now WHERE owner = @owner AND provider = @provider AND state = 'vaulted' RETURNING id`,
      ).all({ owner, provider, now }) as { id: string }[];
      this.q(
        `INSERT INTO credentials (id, owner, provider, state, format, key_id, iv, ciphertext, tag, sha256, size,
           session_id, created_at, updated_at)
         VALUES (@id, @owner, @provider, 'vaulted', @format, @keyId, @iv, @ciphertext, @tag, @sha256, @size,
           @sessionId, @now, @now)`,
      ).run({
        id,
        owner,
        provider,
        format: VAULT_FORMAT,
        ...sealed,
        sha256,
        size: plaintext.byteLength,
        sessionId: input.sessionId ?? null,
        now,
      });
    });
    if (dropped.length > 0) this.checkpoint();
    for (const d of dropped) this.log(`vault: credential ${d.id} superseded by ${id} before it was written`);
    this.log(
      `vault: credential ${id} vaulted for ${owner}/${provider} (${plaintext.byteLength} bytes, sha256 ${sha256})`,
    );
    return this.get(id);
  }

  get(id: string): CredentialRecord {
    const row = this.row(id);
    if (row === null) throw new FiredeckError('not_found', `No credential with id ${id}`);
    return toRecord(row);
  }

  list(filter: { owner?: string; provider?: string; state?: CredentialState } = {}): CredentialRecord[] {
    const rows = this.q(
      `SELECT * FROM credentials WHERE (@owner IS NULL OR owner = @owner) AND (@provider IS NULL OR provider = @provider)
         AND (@state IS NULL OR state = @state) ORDER BY created_at, id`,
    ).all({ owner: filter.owner ?? null, provider: filter.provider ?? null, state: filter.state ?? null });
    return rows.map((r) => toRecord(RowSchema.parse(r)));
  }

  /** The owner's live credential for a provider: the one waiting to be written, else the one written. */
  live(owner: string, provider: string): CredentialRecord | null {
    const row = this.q(
      `SELECT * FROM credentials WHERE owner = ? AND provider = ? AND state IN ('vaulted', 'written')
         ORDER BY CASE state WHEN 'vaulted' THEN 0 ELSE 1 END LIMIT 1`,
    ).get(owner, provider);
    return row === undefined ? null : toRecord(RowSchema.parse(row));
  }

  /**
   * The plaintext of a vaulted credential. A record whose ciphertext, IV, tag, id, owner, provider, hash or format
   * was altered, or that was moved to another row, is refused with `integrity`; nothing is ever decrypted into
   * unauthenticated bytes.
   */
  open(id: string): Secret {
    const row = this.row(id);
    if (row === null) throw new FiredeckError('not_found', `No credential with id ${id}`);
    if (row.state !== 'vaulted' || row.ciphertext === null || row.iv === null || row.tag === null) {
      throw new FiredeckError('invalid_state', `Credential ${id} is ${row.state}; the vault no longer holds it`, {
        hint: 'A written credential lives only in its CLI VM; log in again to capture a new one.',
      });
    }
    const sealed = { keyId: row.key_id ?? '', iv: row.iv, ciphertext: row.ciphertext, tag: row.tag };
    const plain = this.unsealOrThrow(sealed, row.format, credentialAad(row, row.format), `credential ${id}`);
    const secret = Secret.adopt(plain);
    if (secret.size !== row.size || secret.sha256() !== row.sha256) {
      // Cannot happen with an intact tag (the hash is authenticated); refuse all the same.
      secret.wipe();
      throw integrityError(`credential ${id}`);
    }
    return secret;
  }

  /**
   * Records that the credential was written into `targetVmId` and verified there, and drops the vault's copy.
   * The owner's previously written credential for the provider becomes superseded.
   */
  markWritten(id: string, targetVmId: string): CredentialRecord {
    const row = this.row(id);
    if (row === null) throw new FiredeckError('not_found', `No credential with id ${id}`);
    if (row.state !== 'vaulted') {
      throw new FiredeckError('invalid_state', `Credential ${id} is ${row.state}, not vaulted`);
    }
    const now = this.now().toISOString();
    let previous: { id: string }[] = [];
    const written = (): void => {
      previous = this.q(
        `UPDATE credentials SET state = 'superseded', updated_at = @now
           WHERE owner = @owner AND provider = @provider AND state = 'written' RETURNING id`,
      ).all({ owner: row.owner, provider: row.provider, now }) as { id: string }[];
      this.q(
        `UPDATE credentials SET state = 'written', key_id = NULL, iv = NULL, ciphertext = NULL, tag = NULL,
           target_vm_id = @vm, written_at = @now, updated_at = @now WHERE id = @id AND state = 'vaulted'`,
      ).run({ id, vm: targetVmId, now });
    };
    try {
      this.secureWrite(written);
    } catch (err) {
      if (err instanceof Error && /FOREIGN KEY constraint failed/.test(err.message)) {
        throw new FiredeckError('not_found', `No VM with id ${targetVmId}`);
      }
      throw err;
    }
    this.checkpoint();
    for (const p of previous) this.log(`vault: credential ${p.id} superseded by ${id}`);
    this.log(`vault: credential ${id} written into ${targetVmId}; the vault's copy is dropped`);
    return this.get(id);
  }

  /** Seals the browser VMs' proxy settings (replacing any). */
  putProxy(input: ProxySettingsInput): ProxySettings {
    const settings = ProxySettings.parse(input);
    const plain = Buffer.from(settings.sealable(), 'utf8');
    try {
      const sealed = seal(this.current, plain, settingAad('proxy', VAULT_FORMAT));
      this.secureWrite(() => {
        this.q(
          `INSERT INTO vault_settings (name, format, key_id, iv, ciphertext, tag, updated_at)
             VALUES ('proxy', @format, @keyId, @iv, @ciphertext, @tag, @now)
           ON CONFLICT (name) DO UPDATE SET format = excluded.format, key_id = excluded.key_id, iv = excluded.iv,
             ciphertext = excluded.ciphertext, tag = excluded.tag, updated_at = excluded.updated_at`,
        ).run({ format: VAULT_FORMAT, ...sealed, now: this.now().toISOString() });
      });
    } finally {
      plain.fill(0);
    }
    this.log(`vault: proxy settings stored (${JSON.stringify(settings.redacted())})`);
    return settings;
  }

  getProxy(): ProxySettings | null {
    const raw = this.q("SELECT * FROM vault_settings WHERE name = 'proxy'").get();
    if (raw === undefined) return null;
    const row = SettingRowSchema.parse(raw);
    const plain = this.unsealOrThrow(
      { keyId: row.key_id, iv: row.iv, ciphertext: row.ciphertext, tag: row.tag },
      row.format,
      settingAad(row.name, row.format),
      'the proxy settings',
    );
    try {
      return ProxySettings.fromJson(plain.toString('utf8'));
    } finally {
      plain.fill(0);
    }
  }

  clearProxy(): void {
    this.secureWrite(() => this.q("DELETE FROM vault_settings WHERE name = 'proxy'").run());
    this.checkpoint();
    this.log('vault: proxy settings cleared');
  }

  /**
   * Re-seals every record under a new key and makes it the key file's key (see `keyFileRotation` for the order
   * that survives a crash at any point). Only for a key file; configured keys rotate through the configuration.
   */
  rotateKey(options: { onStep?: (step: RotationStep) => void } = {}): { keyId: string; resealed: number } {
    if (this.source.kind !== 'file') {
      throw new FiredeckError('invalid_state', 'The vault key comes from the configuration; rotate it there', {
        hint: 'Set the new key as the vault key and the old one as a previous key, restart, then drop the previous key.',
      });
    }
    const file = this.source.path;
    const onStep = options.onStep ?? (() => undefined);
    const next = newVaultKey();
    const old = this.current;
    keyFileRotation.stage(file, next, () => onStep('staging'));
    // From here this vault opens records under either key, whatever throws; the files settle on the next open.
    this.keys.set(next.id, next);
    let committed = false;
    let resealed = 0;
    try {
      onStep('staged');
      resealed = this.resealAll(() => onStep('resealed-one'), next);
      committed = true;
      this.current = next;
      onStep('committed');
      keyFileRotation.promote(file);
    } catch (err) {
      if (!committed) {
        this.keys.delete(next.id);
        keyFileRotation.discard(file);
        next.bytes.fill(0);
      }
      throw err;
    }
    this.keys.delete(old.id);
    old.bytes.fill(0);
    onStep('promoted');
    this.log(`vault: key rotated from ${old.id} to ${next.id}, ${resealed} records re-sealed`);
    return { keyId: next.id, resealed };
  }

  /**
   * Re-seals, in one transaction, every record not under `target` (default: the current key). Durable before it
   * returns (synchronous=FULL for the commit), and the old ciphertexts are zeroed in the file and the WAL.
   */
  private resealAll(onOne: () => void, target: VaultKey = this.current): number {
    // Records under a key this vault does not hold stay as they are (status() lists them).
    const held = (raw: unknown): boolean => this.keys.has((raw as { key_id: string }).key_id);
    const credentials = this.q("SELECT * FROM credentials WHERE state = 'vaulted' AND key_id <> ? ORDER BY id")
      .all(target.id)
      .filter(held);
    const settings = this.q('SELECT * FROM vault_settings WHERE key_id <> ? ORDER BY name').all(target.id).filter(held);
    if (credentials.length === 0 && settings.length === 0) return 0;
    const synchronous = this.db.pragma('synchronous', { simple: true }) as number;
    this.db.pragma('synchronous = FULL');
    try {
      this.secureWrite(() => {
        for (const raw of credentials) {
          const row = RowSchema.parse(raw);
          if (row.iv === null || row.ciphertext === null || row.tag === null) continue;
          const from = { keyId: row.key_id ?? '', iv: row.iv, ciphertext: row.ciphertext, tag: row.tag };
          const fresh = this.reseal(
            from,
            row.format,
            credentialAad(row, row.format),
            credentialAad(row, VAULT_FORMAT),
            target,
            `credential ${row.id}`,
          );
          this.q(
            `UPDATE credentials SET format = @format, key_id = @keyId, iv = @iv, ciphertext = @ciphertext,
               tag = @tag WHERE id = @id`,
          ).run({ id: row.id, format: VAULT_FORMAT, ...fresh });
          onOne();
        }
        for (const raw of settings) {
          const row = SettingRowSchema.parse(raw);
          const from = { keyId: row.key_id, iv: row.iv, ciphertext: row.ciphertext, tag: row.tag };
          const fresh = this.reseal(
            from,
            row.format,
            settingAad(row.name, row.format),
            settingAad(row.name, VAULT_FORMAT),
            target,
            `setting ${row.name}`,
          );
          this.q(
            `UPDATE vault_settings SET format = @format, key_id = @keyId, iv = @iv, ciphertext = @ciphertext,
               tag = @tag WHERE name = @name`,
          ).run({ name: row.name, format: VAULT_FORMAT, ...fresh });
          onOne();
        }
      });
    } finally {
      this.db.pragma(`synchronous = ${Number(synchronous)}`);
    }
    this.checkpoint();
    return credentials.length + settings.length;
  }

  /**
   * Dropped or re-sealed ciphertexts would otherwise linger in the main file (the page's old version) and in WAL
   * frames until SQLite's next automatic checkpoint; secureWrite zeroed them in the new page versions, this makes
   * those the only ones. A busy reader only delays it.
   */
  private checkpoint(): void {
    this.db.pragma('wal_checkpoint(TRUNCATE)');
  }

  /** A write transaction with freed and overwritten pages zeroed, so dropped ciphertexts do not linger. */
  private secureWrite(fn: () => void): void {
    const before = this.db.pragma('secure_delete', { simple: true }) as number;
    this.db.pragma('secure_delete = ON');
    try {
      this.db.transaction(fn)();
    } finally {
      this.db.pragma(`secure_delete = ${Number(before)}`);
    }
  }

  /** Opens `from` and seals its plaintext again under `target` with the current format's associated data. */
  private reseal(from: Sealed, format: number, aadOld: Buffer, aadNew: Buffer, target: VaultKey, what: string): Sealed {
    const plain = this.unsealOrThrow(from, format, aadOld, what);
    try {
      return seal(target, plain, aadNew);
    } finally {
      plain.fill(0);
    }
  }

  private unsealOrThrow(sealed: Sealed, format: number, aad: Buffer, what: string): Buffer {
    if (format !== VAULT_FORMAT) {
      throw new FiredeckError('integrity', `The vault cannot open ${what}: unknown record format ${format}`, {
        hint: 'A newer firedeckd wrote it, or the record was altered.',
      });
    }
    const key = this.keys.get(sealed.keyId);
    if (key === undefined) {
      throw new FiredeckError('unavailable', `The vault cannot open ${what}: it is sealed under key ${sealed.keyId}`, {
        hint: 'That key is not configured (a lost or replaced vault key file): restore it, or log in again.',
        details: { keyId: sealed.keyId },
      });
    }
    try {
      return unseal(key, sealed, aad);
    } catch {
      throw integrityError(what);
    }
  }

  private row(id: string): Row | null {
    if (!CredentialId.safeParse(id).success) return null;
    const raw = this.q('SELECT * FROM credentials WHERE id = ?').get(id);
    return raw === undefined ? null : RowSchema.parse(raw);
  }
}

/**
 * After a crash in `rotateKey`: records use the staged key only if the re-seal committed, so then the rename is
 * finished; otherwise the staged key is dropped.
 */
function settleRotation(db: Db, file: string, log: (line: string) => void): void {
  const staged = keyFileRotation.staged(file);
  if (staged === null) return;
  const uses = db
    .prepare(
      `SELECT (SELECT COUNT(*) FROM credentials WHERE key_id = @id) + (SELECT COUNT(*) FROM vault_settings WHERE key_id = @id) AS n`,
    )
    .get({ id: staged.id }) as { n: number };
  if (uses.n > 0 || !fs.existsSync(file)) {
    keyFileRotation.promote(file);
    log(`vault: finished an interrupted key rotation (key ${staged.id}, ${uses.n} records)`);
  } else {
    keyFileRotation.discard(file);
    log(`vault: discarded the staged key ${staged.id} of an interrupted rotation (no record used it)`);
  }
  staged.bytes.fill(0);
}

function integrityError(what: string): FiredeckError {
  return new FiredeckError('integrity', `The vault refused ${what}: it failed its integrity check`, {
    hint: 'The stored record was altered or moved. Do not use it: log in again to capture a new credential.',
  });
}

function parseOrThrow<T>(schema: z.ZodType<T>, value: unknown, what: string): T {
  const r = schema.safeParse(value);
  if (!r.success) throw new FiredeckError('invalid_params', `Invalid credential ${what}`);
  return r.data;
}

function toRecord(row: Row): CredentialRecord {
  return {
    id: row.id,
    owner: row.owner,
    provider: row.provider,
    state: row.state,
    sha256: row.sha256,
    size: row.size,
    keyId: row.key_id,
    sessionId: row.session_id,
    targetVmId: row.target_vm_id,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
    writtenAt: row.written_at,
  };
}
