import crypto from 'node:crypto';
import { FiredeckError } from '../../shared/errors';
import type { CheckedHostInput, Host, HostAuth } from '../../shared/app/contract';
import { fingerprintOf, type PinnedHostKey } from '../ssh/hostKey';
import type { Db } from './localStore';

interface HostRow {
  id: string;
  name: string;
  address: string;
  port: number;
  user: string;
  auth_type: 'agent' | 'keyFile';
  key_path: string | null;
  host_key: string | null;
  host_key_fingerprint: string | null;
}

/** A host the operator added, with the host key pinned for it (if any). */
export interface StoredHost extends Host {
  kind: 'ssh';
  auth: HostAuth;
  pinnedKey: PinnedHostKey | null;
}

/** The operator's hosts, kept in the local store. Input comes checked by the app service (the contract's HostInput). */
export class HostRegistry {
  constructor(private readonly db: Db) {}

  list(): StoredHost[] {
    const rows = this.db.prepare('SELECT * FROM hosts ORDER BY name, id').all() as HostRow[];
    return rows.map(toHost);
  }

  get(id: string): StoredHost {
    const row = this.db.prepare('SELECT * FROM hosts WHERE id = ?').get(id) as HostRow | undefined;
    if (!row) throw new FiredeckError('not_found', `No host ${id}`);
    return toHost(row);
  }

  add(host: CheckedHostInput): StoredHost {
    const id = `h-${crypto.randomBytes(8).toString('hex')}`;
    const now = new Date().toISOString();
    this.db
      .prepare(
        `INSERT INTO hosts (id, name, address, port, user, auth_type, key_path, created_at, updated_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      )
      .run(id, host.name, host.address, host.port, host.user, host.auth.type, keyPath(host.auth), now, now);
    return this.get(id);
  }

  /** Changing the address or port drops the pinned key: it belonged to the old endpoint. */
  update(id: string, host: CheckedHostInput): StoredHost {
    const before = this.get(id);
    const sameEndpoint = before.address === host.address && before.port === host.port;
    this.db
      .prepare(
        `UPDATE hosts SET name = ?, address = ?, port = ?, user = ?, auth_type = ?, key_path = ?,
           host_key = CASE WHEN ? THEN host_key ELSE NULL END,
           host_key_fingerprint = CASE WHEN ? THEN host_key_fingerprint ELSE NULL END,
           updated_at = ? WHERE id = ?`,
      )
      .run(
        host.name,
        host.address,
        host.port,
        host.user,
        host.auth.type,
        keyPath(host.auth),
        sameEndpoint ? 1 : 0,
        sameEndpoint ? 1 : 0,
        new Date().toISOString(),
        id,
      );
    return this.get(id);
  }

  remove(id: string): void {
    const info = this.db.prepare('DELETE FROM hosts WHERE id = ?').run(id);
    if (info.changes === 0) throw new FiredeckError('not_found', `No host ${id}`);
  }

  pinHostKey(id: string, key: PinnedHostKey): StoredHost {
    this.db
      .prepare('UPDATE hosts SET host_key = ?, host_key_fingerprint = ?, updated_at = ? WHERE id = ?')
      .run(key.key, key.fingerprint, new Date().toISOString(), id);
    return this.get(id);
  }
}

function keyPath(auth: HostAuth): string | null {
  return auth.type === 'keyFile' ? auth.path : null;
}

function toHost(row: HostRow): StoredHost {
  const auth: HostAuth =
    row.auth_type === 'keyFile' ? { type: 'keyFile', path: row.key_path ?? '' } : { type: 'agent' };
  // The key is the pin; its fingerprint is derived from it, so a row missing only that is still pinned.
  const pinnedKey =
    row.host_key !== null
      ? {
          key: row.host_key,
          fingerprint: row.host_key_fingerprint ?? fingerprintOf(Buffer.from(row.host_key, 'base64')),
        }
      : null;
  return {
    id: row.id,
    name: row.name,
    kind: 'ssh',
    address: row.address,
    port: row.port,
    user: row.user,
    auth,
    hostKeyFingerprint: pinnedKey?.fingerprint ?? null,
    pinnedKey,
  };
}
