import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FiredeckError } from '../../../src/shared/errors';
import { AUDIT_PAGE_DEFAULT, type AuditEntry } from '../../../src/shared/protocol/audit';
import { DaemonClient } from '../cli/daemonClient';
import { recordCall } from '../daemon';
import { RpcServer } from '../rpc/server';
import { userName } from '../system/users';
import { AuditLog } from '../store/auditLog';
import { openDb, type Db } from '../store/db';
import { VmStore } from '../store/vmStore';
import { newVm } from '../store/testing/newVm';
import { registerAuditHandlers } from './auditHandlers';

let dir: string;
let db: Db;
let audit: AuditLog;

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'firedeck-audit-'));
  db = openDb(path.join(dir, 'firedeck.db'));
  audit = new AuditLog(db);
});
afterEach(() => {
  db.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

const T = (s: number): string => new Date(Date.UTC(2026, 0, 1, 12, 0, s)).toISOString();
const row = (
  at: string,
  method: string,
  params: unknown,
  fields: { user?: string; uid?: number; ok?: boolean; errorKind?: string } = {},
): number =>
  audit.append({
    at,
    user: fields.user ?? 'root',
    uid: fields.uid ?? 0,
    method,
    params,
    ok: fields.ok ?? true,
    errorKind: fields.ok === false ? (fields.errorKind ?? 'not_found') : null,
    errorMessage: fields.ok === false ? 'No such VM' : null,
  });

/** Every page of a filter, following nextCursor to the end. */
function allPages(params: Parameters<AuditLog['list']>[0]): { pages: AuditEntry[][]; ids: number[] } {
  const pages: AuditEntry[][] = [];
  let cursor: string | null | undefined;
  do {
    const page = audit.list({ ...params, ...(cursor ? { cursor } : {}) });
    pages.push(page.entries);
    cursor = page.nextCursor;
  } while (cursor !== null && pages.length < 100);
  return { pages, ids: pages.flat().map((e) => e.id) };
}

describe('AuditLog.list (audit.list on the real store)', () => {
  it('answers newest first with the caller, the VM and image each row is about, and the result', () => {
    const vms = new VmStore(db);
    vms.insert(newVm('vm-0000000a', 'web', { image: 'cli' }), T(1));
    row(T(2), 'vm.create', { name: 'web', kind: 'cli', owner: 'alice', image: 'cli' });
    row(T(3), 'vm.stop', { id: 'vm-0000000a', force: true }, { user: 'ops', uid: 1001 });
    row(T(4), 'vm.destroy', { id: 'vm-0000000b' }, { ok: false });
    row(T(5), 'image.promote', { name: 'test', version: '20261203T000000-0123456789ab' });
    row(T(6), 'channel.open', { kind: 'shell', vm: 'web', vmId: 'vm-0000000a', command: false, pty: true });

    const { entries, nextCursor } = audit.list({});
    expect(nextCursor).toBeNull();
    expect(entries.map((e) => e.method)).toEqual([
      'channel.open',
      'image.promote',
      'vm.destroy',
      'vm.stop',
      'vm.create',
    ]);
    const [open, promote, destroy, stop, create] = entries;
    expect(create).toMatchObject({ user: 'root', uid: 0, vmId: 'vm-0000000a', vmName: 'web', image: 'cli', ok: true });
    expect(create!.error).toBeNull();
    expect(stop).toMatchObject({ user: 'ops', uid: 1001, vmId: 'vm-0000000a', vmName: 'web', image: null });
    expect(destroy).toMatchObject({ vmId: 'vm-0000000b', vmName: null, ok: false });
    expect(destroy!.error).toEqual({ kind: 'not_found', message: 'No such VM' });
    expect(promote).toMatchObject({ vmId: null, image: 'test@20261203T000000-0123456789ab' });
    expect(open).toMatchObject({ vmId: 'vm-0000000a', vmName: 'web' });
  });

  it('filters by user, method (exact or a family), VM id or name, and time range (inclusive)', () => {
    const vms = new VmStore(db);
    vms.insert(newVm('vm-0000000a', 'web'), T(1));
    vms.insert(newVm('vm-0000000c', 'desk', { kind: 'browser' }), T(1));
    row(T(2), 'vm.create', { name: 'web', kind: 'cli', owner: 'alice', image: 'test' });
    row(T(3), 'vm.start', { id: 'vm-0000000a' }, { user: 'ops', uid: 1001 });
    row(T(4), 'vm.start', { id: 'vm-0000000c' });
    row(T(5), 'image.gc', {});
    row(T(6), 'auth.start', { user: 'alice', provider: 'selftest' }, { user: 'ops', uid: 1001 });

    const methodsOf = (p: Parameters<AuditLog['list']>[0]): string[] =>
      audit.list(p).entries.map((e) => `${e.method}@${e.at.slice(17, 19)}`);
    expect(methodsOf({ user: 'ops' })).toEqual(['auth.start@06', 'vm.start@03']);
    expect(methodsOf({ method: 'vm.start' })).toEqual(['vm.start@04', 'vm.start@03']);
    expect(methodsOf({ method: 'vm.*' })).toEqual(['vm.start@04', 'vm.start@03', 'vm.create@02']);
    expect(methodsOf({ method: 'vm.create.*' })).toEqual([]);
    // By name: the create (which names only the name) and every call on the VM's id; by id the same.
    expect(methodsOf({ vm: 'web' })).toEqual(['vm.start@03', 'vm.create@02']);
    expect(methodsOf({ vm: 'vm-0000000a' })).toEqual(['vm.start@03', 'vm.create@02']);
    expect(methodsOf({ vm: 'desk' })).toEqual(['vm.start@04']);
    expect(methodsOf({ since: T(3), until: T(5) })).toEqual(['image.gc@05', 'vm.start@04', 'vm.start@03']);
    // Another offset for the same instant is the same bound.
    expect(methodsOf({ since: '2026-01-01T13:00:05+01:00' })).toEqual(['auth.start@06', 'image.gc@05']);
    expect(methodsOf({ user: 'ops', method: 'vm.*', vm: 'web', since: T(3), until: T(3) })).toEqual(['vm.start@03']);
    expect(methodsOf({ user: 'nobody' })).toEqual([]);
  });

  it('pages by (time, id) across pages whose rows share one timestamp: every row once, in order', () => {
    // 7 rows at one instant, 3 at a later one, 2 earlier: page size 4 cuts through the equal timestamps.
    const ids: number[] = [];
    for (let i = 0; i < 2; i++) ids.push(row(T(1), 'vm.start', { id: 'vm-0000000a' }));
    for (let i = 0; i < 7; i++) ids.push(row(T(2), 'vm.stop', { id: 'vm-0000000a' }));
    for (let i = 0; i < 3; i++) ids.push(row(T(3), 'vm.restart', { id: 'vm-0000000a' }));
    const expected = [...ids.slice(9).reverse(), ...ids.slice(2, 9).reverse(), ...ids.slice(0, 2).reverse()];

    const { pages, ids: seen } = allPages({ limit: 4 });
    expect(pages.map((p) => p.length)).toEqual([4, 4, 4]);
    expect(seen).toEqual(expected);
    // A row written after the first page was read does not shift the later pages (no OFFSET).
    const first = audit.list({ limit: 5 });
    row(T(9), 'vm.start', { id: 'vm-0000000a' });
    const second = audit.list({ limit: 5, cursor: first.nextCursor! });
    expect([...first.entries, ...second.entries].map((e) => e.id)).toEqual(expected.slice(0, 10));
    // A page that ends exactly at the last row says there is no next one.
    expect(audit.list({ limit: 13 }).nextCursor).toBeNull();
    expect(allPages({ limit: 4, method: 'vm.stop' }).ids).toEqual(ids.slice(2, 9).reverse());
  });

  it('brings 100 entries unless told', () => {
    for (let i = 0; i < AUDIT_PAGE_DEFAULT + 1; i++) row(T(1), 'vm.start', { id: 'vm-0000000a' });
    const page = audit.list({});
    expect(page.entries).toHaveLength(AUDIT_PAGE_DEFAULT);
    expect(page.nextCursor).not.toBeNull();
    expect(audit.list({ cursor: page.nextCursor! }).entries).toHaveLength(1);
  });

  it('refuses a cursor it did not issue with invalid_params and the fix', () => {
    row(T(1), 'vm.start', { id: 'vm-0000000a' });
    const forged = Buffer.from(JSON.stringify(['yesterday', 3])).toString('base64url');
    for (const cursor of ['garbage', forged, Buffer.from('[1,2]').toString('base64url')]) {
      let caught: unknown;
      try {
        audit.list({ cursor });
      } catch (err) {
        caught = err;
      }
      expect(caught).toBeInstanceOf(FiredeckError);
      expect(caught).toMatchObject({ kind: 'invalid_params', hint: expect.stringMatching(/nextCursor/) });
    }
  });
});

describe('audit.list over the daemon socket', () => {
  let server: RpcServer;
  let client: DaemonClient;

  beforeEach(async () => {
    server = new RpcServer({ onMutatingCall: (record) => recordCall(audit, record, () => undefined) });
    registerAuditHandlers(server, audit);
    server.register('auth.submitCode', () => {
      throw new FiredeckError('invalid_state', 'No login waits for a code');
    });
    const socketPath = path.join(dir, 'd.sock');
    await server.listen(socketPath, 0o600);
    client = await DaemonClient.connect(socketPath);
  });
  afterEach(async () => {
    client.close();
    await server.close();
  });

  it("records a mutating call as the kernel's caller, and never returns a redacted param's secret", async () => {
    await expect(
      client.call('auth.submitCode', { id: 'auth-0000abcd', code: 'SECRET-PASTE-42' }),
    ).rejects.toMatchObject({ kind: 'invalid_state' });
    const page = await client.call('audit.list', { method: 'auth.submitCode' });
    expect(page.entries).toHaveLength(1);
    const entry = page.entries[0]!;
    expect(entry).toMatchObject({
      method: 'auth.submitCode',
      user: userName(process.getuid!()) ?? String(process.getuid!()),
      uid: process.getuid!(),
      ok: false,
      error: { kind: 'invalid_state' },
    });
    expect(entry.params).toEqual({ id: 'auth-0000abcd', code: '[redacted]' });
    expect(JSON.stringify(page)).not.toContain('SECRET-PASTE-42');
  });

  it('refuses a limit outside 1..500, an unknown field and a bad cursor, each with its kind', async () => {
    for (const limit of [0, 501, 2.5]) {
      await expect(client.call('audit.list', { limit })).rejects.toMatchObject({ kind: 'invalid_params' });
    }
    await expect(client.call('audit.list', { limit: 500 })).resolves.toMatchObject({ nextCursor: null });
    await expect(client.call('audit.list', { vmId: 'vm-0000000a' } as never)).rejects.toMatchObject({
      kind: 'invalid_params',
    });
    await expect(client.call('audit.list', { cursor: 'garbage' })).rejects.toMatchObject({
      kind: 'invalid_params',
      hint: expect.stringMatching(/nextCursor/),
    });
  });
});
