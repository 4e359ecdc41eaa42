import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { FiredeckError } from '../../../src/shared/errors';
import { pidAlive } from '../system/processes';
import { fsyncPath } from './durable';

export const VAULT_KEY_BYTES = 32;
export const DEFAULT_VAULT_KEY_FILE = 'vault.key';

/**
 * Where the vault's key comes from.
 * - `file`: a key file. The default (`<stateDir>/vault.key`) is `create: true`: made 0600 on first start, and
 *   `rotateKey()` replaces it. A key file the operator configured is `create: false`: a missing one is an error,
 *   never silently replaced by a new key (that would orphan every record).
 * - `config`: base64 keys from the daemon's configuration. `current` seals new records; records sealed under one
 *   of `previous` are re-sealed under `current` when the vault opens, so rotating is: put the new key in
 *   `current`, the old one in `previous`, restart, then drop `previous`. (If a value arrives through the
 *   environment, delete it from `process.env` after reading, or every child process inherits it.)
 */
export type VaultKeySource =
  | { kind: 'file'; path: string; create: boolean }
  | { kind: 'config'; current: string; previous?: readonly string[] };

/** The daemon's choice: a configured base64 value, else a configured key file, else `<stateDir>/vault.key`. */
export function vaultKeySource(options: {
  stateDir: string;
  keyBase64?: string;
  previousKeysBase64?: readonly string[];
  keyFile?: string;
}): VaultKeySource {
  if (options.keyBase64 !== undefined && options.keyFile !== undefined) {
    throw new FiredeckError('invalid_params', 'Configure the vault key either as a value or as a file, not both');
  }
  if (options.keyBase64 !== undefined) {
    return { kind: 'config', current: options.keyBase64, previous: options.previousKeysBase64 ?? [] };
  }
  if (options.keyFile !== undefined) return { kind: 'file', path: options.keyFile, create: false };
  return { kind: 'file', path: path.join(options.stateDir, DEFAULT_VAULT_KEY_FILE), create: true };
}

/** A key and its public id: a fingerprint of the key, stored beside each record so the right key is chosen. */
export interface VaultKey {
  readonly id: string;
  readonly bytes: Buffer;
}

export function vaultKey(bytes: Buffer): VaultKey {
  if (bytes.byteLength !== VAULT_KEY_BYTES) throw new Error('a vault key has 32 bytes');
  const id = createHash('sha256').update('firedeck-vault-key-id\0').update(bytes).digest('hex').slice(0, 16);
  return { id, bytes };
}

export function newVaultKey(): VaultKey {
  return vaultKey(randomBytes(VAULT_KEY_BYTES));
}

/** A configured base64 key; the error never echoes the value. */
export function keyFromBase64(value: string, what: string): VaultKey {
  const text = value.trim();
  const bytes = Buffer.from(text, 'base64');
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(text) || bytes.byteLength !== VAULT_KEY_BYTES) {
    throw new FiredeckError('invalid_params', `The ${what} is not a base64 encoding of 32 bytes`, {
      hint: 'Generate one with `head -c 32 /dev/urandom | base64`.',
    });
  }
  return vaultKey(bytes);
}

/**
 * Reads a key file: 32 raw bytes, or their base64 (one line). Refuses a file others may read, and a symlink where
 * the daemon manages the file itself.
 */
export function readKeyFile(file: string, managed: boolean): VaultKey {
  let fd: number;
  try {
    fd = fs.openSync(file, fs.constants.O_RDONLY | (managed ? fs.constants.O_NOFOLLOW : 0));
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ELOOP') {
      throw new FiredeckError('permission_denied', `The vault key file ${file} is a symlink`, {
        hint: 'Replace the link with the key file itself (mode 0600, owned by the daemon).',
      });
    }
    throw new FiredeckError('unavailable', `Cannot read the vault key file ${file} (${code ?? 'error'})`, {
      hint: 'Check the path configured for the vault key, and that the daemon runs as root.',
    });
  }
  try {
    const st = fs.fstatSync(fd);
    if (!st.isFile()) throw new FiredeckError('invalid_state', `The vault key file ${file} is not a regular file`);
    if ((st.mode & 0o077) !== 0) {
      throw new FiredeckError('permission_denied', `The vault key file ${file} is readable by others`, {
        hint: `chmod 600 ${file} (and rotate the key if others may have read it).`,
      });
    }
    if (typeof process.getuid === 'function' && st.uid !== process.getuid() && st.uid !== 0) {
      throw new FiredeckError('permission_denied', `The vault key file ${file} belongs to uid ${st.uid}`, {
        hint: `chown root ${file}`,
      });
    }
    const raw = fs.readFileSync(fd);
    if (raw.byteLength === VAULT_KEY_BYTES) return vaultKey(raw);
    const text = raw.toString('latin1').trim();
    const decoded = Buffer.from(text, 'base64');
    raw.fill(0);
    if (/^[A-Za-z0-9+/]+={0,2}$/.test(text) && decoded.byteLength === VAULT_KEY_BYTES) return vaultKey(decoded);
    throw new FiredeckError('invalid_state', `The vault key file ${file} holds no 32-byte key`, {
      hint: 'A key file holds 32 raw bytes or their base64; restore it from a backup.',
    });
  } finally {
    fs.closeSync(fd);
  }
}

/** Writes `key` to a new file (O_EXCL, 0600) and flushes it; throws EEXIST if the name is taken. */
function writeNewKeyFile(file: string, key: VaultKey): void {
  const fd = fs.openSync(
    file,
    fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_NOFOLLOW,
    0o600,
  );
  try {
    fs.fchmodSync(fd, 0o600);
    fs.writeSync(fd, key.bytes);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

const TEMP_KEY = /^(.+)\.(\d+)\.[0-9a-f]{8}\.tmp$/;

/**
 * Puts a complete key file at `file` unless the name is taken (then returns false). The key is written to a temp
 * file of this process's own (O_EXCL, 0600, fsync'd) and published with link(2), which fails if the name exists:
 * several publishers race safely (exactly one wins), and a crash at any moment leaves either no file or a whole
 * one. A plain O_EXCL create of the final name would let a reader (or the next start, after a crash) find it
 * empty.
 */
function publishKeyFile(file: string, key: VaultKey, onWritten: () => void = () => undefined): boolean {
  const dir = path.dirname(file);
  const temp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  writeNewKeyFile(temp, key);
  try {
    onWritten();
    fs.linkSync(temp, file);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    return false;
  } finally {
    fs.rmSync(temp, { force: true });
    fsyncPath(dir);
  }
}

/** The managed key file, created on first start (several daemons, or a restart racing a dying one, may race). */
export function loadOrCreateKeyFile(file: string): { key: VaultKey; created: boolean } {
  fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  removeStaleTempKeys(file);
  if (fs.existsSync(file)) return { key: readKeyFile(file, true), created: false };
  const key = newVaultKey();
  if (publishKeyFile(file, key)) return { key, created: true };
  key.bytes.fill(0);
  return { key: readKeyFile(file, true), created: false };
}

/** Temp keys (of the key file or its staged successor) whose writer died before publishing them. */
function removeStaleTempKeys(file: string): void {
  const dir = path.dirname(file);
  const names = new Set([path.basename(file), path.basename(stagedKeyPath(file))]);
  for (const name of fs.readdirSync(dir)) {
    const m = TEMP_KEY.exec(name);
    if (m === null || !names.has(m[1]!) || pidAlive(Number(m[2]))) continue;
    fs.rmSync(path.join(dir, name), { force: true });
  }
}

function stagedKeyPath(file: string): string {
  return `${file}.next`;
}

/**
 * The rotation's key file swap, in the order that keeps every record readable whatever moment a crash hits:
 *  1. `stage`: the new key goes to `<file>.next`, published whole (see publishKeyFile), fsync'd with its directory;
 *  2. the caller re-seals every record under it in one committed transaction;
 *  3. `promote`: rename(2) `<file>.next` over `<file>`, fsync the directory.
 * Until 3, records are under the old key (in `<file>`) or, once 2 committed, under the new one (in `.next`); on the
 * next start `settle` finishes 3 if any record uses the staged key, and removes the staged key otherwise.
 */
export const keyFileRotation = {
  nextPath: stagedKeyPath,
  /** `onWritten` runs between writing the temp file and publishing it (tests die there). */
  stage(file: string, key: VaultKey, onWritten?: () => void): void {
    removeStaleTempKeys(file);
    if (!publishKeyFile(stagedKeyPath(file), key, onWritten)) {
      throw new FiredeckError('conflict', `A vault key rotation is already staged at ${stagedKeyPath(file)}`, {
        hint: 'Restart the daemon: it finishes or discards an interrupted rotation when it opens the vault.',
      });
    }
  },
  promote(file: string): void {
    fs.renameSync(stagedKeyPath(file), file);
    fsyncPath(path.dirname(file));
  },
  discard(file: string): void {
    fs.rmSync(stagedKeyPath(file), { force: true });
    fsyncPath(path.dirname(file));
  },
  /** The staged key of an interrupted rotation, if there is one. */
  staged(file: string): VaultKey | null {
    removeStaleTempKeys(file);
    return fs.existsSync(stagedKeyPath(file)) ? readKeyFile(stagedKeyPath(file), true) : null;
  },
};
