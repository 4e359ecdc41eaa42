import { z } from 'zod';
import { FiredeckError } from '../../../src/shared/errors';
import { DriverName } from '../../../src/shared/protocol/daemon';
import { Vm, VmKind, VmState } from '../../../src/shared/protocol/vm';
import type { Statement } from 'better-sqlite3';
import { statementCache, type Db } from './db';
import { VmHandleSchema, type VmHandle } from './vmHandle';

const VmRowSchema = z.object({
  id: z.string(),
  name: z.string(),
  kind: VmKind,
  owner: z.string(),
  image: z.string(),
  driver: DriverName,
  vcpus: z.number().int(),
  memory_mib: z.number().int(),
  disk_mib: z.number().int(),
  session_id: z.string().nullable(),
  state: VmState,
  ready: z.string(),
  pid: z.number().int().nullable(),
  handle: z.string().nullable(),
  host_key: z.string().nullable(),
  created_at: z.string(),
  updated_at: z.string(),
  started_at: z.string().nullable(),
  expires_at: z.string().nullable(),
  last_error: z.string().nullable(),
  address: z.string().nullable(),
  tap: z.string().nullable(),
  mac: z.string().nullable(),
});

/** A VM as the daemon keeps it: the public model plus what only the daemon needs. */
export interface VmRecord {
  vm: Vm;
  sessionId: string | null;
  handle: VmHandle | null;
  /** `<type> <base64>` from the guest's FIREDECK-HOSTKEY marker. */
  hostKey: string | null;
}

export interface NewVm {
  id: string;
  name: string;
  kind: VmKind;
  owner: string;
  image: string;
  driver: DriverName;
  vcpus: number;
  memoryMib: number;
  diskMib: number;
  sessionId: string | null;
  expiresAt: string | null;
}

export interface VmPatch {
  state?: VmState;
  ready?: string[];
  handle?: VmHandle | null;
  hostKey?: string | null;
  startedAt?: string | null;
  expiresAt?: string | null;
  lastError?: string | null;
}

const SELECT = `
  SELECT v.*, l.address AS address, l.tap AS tap, l.mac AS mac
  FROM vms v LEFT JOIN ip_leases l ON l.vm_id = v.id`;

/** Typed access to the `vms` table; every row read back is validated. */
export class VmStore {
  private readonly q: (sql: string) => Statement;
  /** `unresponsiveSince` by VM id: an observation of this daemon's health monitor, never written to disk. */
  private readonly unresponsive = new Map<string, string>();

  constructor(private readonly db: Db) {
    this.q = statementCache(db);
  }

  insert(v: NewVm, now = new Date().toISOString()): VmRecord {
    try {
      this.q(
        `INSERT INTO vms (id, name, kind, owner, image, driver, vcpus, memory_mib, disk_mib, session_id, state,
             ready, created_at, updated_at, expires_at)
           VALUES (@id, @name, @kind, @owner, @image, @driver, @vcpus, @memoryMib, @diskMib, @sessionId, 'creating',
             '[]', @now, @now, @expiresAt)`,
      ).run({ ...v, now });
    } catch (err) {
      if (err instanceof Error && /UNIQUE constraint failed: vms\.name/.test(err.message)) {
        throw new FiredeckError('conflict', `A VM named ${v.name} already exists`, {
          hint: 'Pick another name or destroy the existing VM first.',
        });
      }
      throw err;
    }
    return this.require(v.id);
  }

  get(id: string): VmRecord | null {
    const row = this.q(`${SELECT} WHERE v.id = ?`).get(id);
    return row === undefined ? null : this.toRecord(row);
  }

  require(id: string): VmRecord {
    const rec = this.get(id);
    if (rec === null) throw new FiredeckError('not_found', `No VM with id ${id}`);
    return rec;
  }

  byName(name: string): VmRecord | null {
    const row = this.q(`${SELECT} WHERE v.name = ? AND v.state <> 'destroyed'`).get(name);
    return row === undefined ? null : this.toRecord(row);
  }

  list(includeDestroyed = false): VmRecord[] {
    const rows = this.q(
      `${SELECT} ${includeDestroyed ? '' : "WHERE v.state <> 'destroyed'"} ORDER BY v.created_at, v.id`,
    ).all();
    return rows.map((row) => this.toRecord(row));
  }

  update(id: string, patch: VmPatch, now = new Date().toISOString()): VmRecord {
    const sets: string[] = ['updated_at = @now'];
    const values: Record<string, unknown> = { id, now };
    const put = (column: string, value: unknown): void => {
      sets.push(`${column} = @${column}`);
      values[column] = value;
    };
    if (patch.state !== undefined) put('state', patch.state);
    if (patch.ready !== undefined) put('ready', JSON.stringify(patch.ready));
    if (patch.handle !== undefined) {
      put('handle', patch.handle === null ? null : JSON.stringify(patch.handle));
      put('pid', patch.handle === null ? null : patch.handle.pid);
    }
    if (patch.hostKey !== undefined) put('host_key', patch.hostKey);
    if (patch.startedAt !== undefined) put('started_at', patch.startedAt);
    if (patch.expiresAt !== undefined) put('expires_at', patch.expiresAt);
    if (patch.lastError !== undefined) put('last_error', patch.lastError);
    const info = this.q(`UPDATE vms SET ${sets.join(', ')} WHERE id = @id`).run(values);
    if (info.changes === 0) throw new FiredeckError('not_found', `No VM with id ${id}`);
    return this.require(id);
  }

  /** Removes a row that never finished being created (rollback); leases go with it. */
  delete(id: string): void {
    this.q('DELETE FROM vms WHERE id = ?').run(id);
    this.unresponsive.delete(id);
  }

  /** Sets (an ISO time) or clears (null) the VM's `unresponsiveSince`; kept in memory only. */
  setUnresponsive(id: string, since: string | null): VmRecord {
    if (since === null) this.unresponsive.delete(id);
    else this.unresponsive.set(id, since);
    return this.require(id);
  }

  private toRecord(raw: unknown): VmRecord {
    const rec = toRecord(raw);
    rec.vm.unresponsiveSince = this.unresponsive.get(rec.vm.id) ?? null;
    return rec;
  }

  count(): number {
    return (this.q('SELECT COUNT(*) AS n FROM vms').get() as { n: number }).n;
  }
}

function toRecord(raw: unknown): VmRecord {
  const row = VmRowSchema.parse(raw);
  const ready = z.array(z.string()).parse(JSON.parse(row.ready));
  const handle = row.handle === null ? null : VmHandleSchema.parse(JSON.parse(row.handle));
  const vm = Vm.parse({
    id: row.id,
    name: row.name,
    kind: row.kind,
    owner: row.owner,
    image: row.image,
    driver: row.driver,
    vcpus: row.vcpus,
    memoryMib: row.memory_mib,
    diskMib: row.disk_mib,
    address: row.address,
    tap: row.tap,
    mac: row.mac,
    pid: row.pid,
    state: row.state,
    ready,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
    startedAt: row.started_at,
    expiresAt: row.expires_at,
    lastError: row.last_error,
    hostKey: row.host_key,
  });
  return { vm, sessionId: row.session_id, handle, hostKey: row.host_key };
}
