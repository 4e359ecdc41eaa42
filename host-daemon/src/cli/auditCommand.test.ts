import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { AuditEntry } from '../../../src/shared/protocol/audit';
import { registerAuditHandlers } from '../audit/auditHandlers';
import { RpcServer } from '../rpc/server';
import { AuditLog } from '../store/auditLog';
import { openDb, type Db } from '../store/db';
import { AUDIT_USAGE, auditCommand, auditTable, parseAuditArgs } from './auditCommand';
import { DaemonClient } from './daemonClient';

const NOW = new Date('2026-12-03T18:00:00.000Z');

describe('firedeckd audit argv', () => {
  it('turns flags into the audit.list filter, ages into times before now', () => {
    expect(parseAuditArgs([], NOW)).toEqual({ filter: {}, max: 100, json: false });
    expect(
      parseAuditArgs(
        ['--user', 'root', '--method', 'vm.*', '--vm', 'web', '--since', '2h', '--until', '30m', '--json'],
        NOW,
      ),
    ).toEqual({
      filter: {
        user: 'root',
        method: 'vm.*',
        vm: 'web',
        since: '2026-12-03T16:00:00.000Z',
        until: '2026-12-03T17:30:00.000Z',
      },
      max: 100,
      json: true,
    });
    expect(parseAuditArgs(['--since', '2026-12-01T00:00:00+01:00', '--all'], NOW)).toEqual({
      filter: { since: '2026-12-01T00:00:00+01:00' },
      max: null,
      json: false,
    });
    expect(parseAuditArgs(['--limit', '7'], NOW)).toMatchObject({ max: 7 });
    expect(parseAuditArgs(['--help'], NOW)).toBe('help');
    expect(parseAuditArgs(['help'], NOW)).toBe('help');
  });

  it('refuses bad input with invalid_params, naming the flag, the usage as hint', () => {
    const bad = [
      ['--since', 'yesterday'],
      ['--since', '5w'],
      ['--limit', '0'],
      ['--limit', 'ten'],
      ['--limit', '3', '--all'],
      ['--method', 'rm -rf'],
      ['--vm', 'a/b'],
      ['--colour'],
      ['extra'],
    ];
    for (const args of bad) {
      let caught: unknown;
      try {
        parseAuditArgs(args, NOW);
      } catch (err) {
        caught = err;
      }
      expect(caught, args.join(' ')).toMatchObject({ kind: 'invalid_params', hint: AUDIT_USAGE });
    }
    expect(() => parseAuditArgs(['--method', 'rm -rf'], NOW)).toThrow(/--method/);
  });
});

describe('firedeckd audit output', () => {
  const entry = (patch: Partial<AuditEntry>): AuditEntry =>
    AuditEntry.parse({
      id: 1,
      at: '2026-12-03T17:00:00.000Z',
      user: 'root',
      uid: 0,
      method: 'vm.create',
      vmId: 'vm-0000000a',
      vmName: 'web',
      image: 'cli',
      params: {},
      ok: true,
      error: null,
      ...patch,
    });

  it('prints one aligned row per entry: who, what, on which VM or image, how it ended', () => {
    const text = auditTable([
      entry({}),
      entry({
        id: 2,
        user: 'ops',
        uid: 1001,
        method: 'image.gc',
        vmId: null,
        vmName: null,
        image: null,
        ok: false,
        error: { kind: 'conflict', message: 'in use' },
      }),
    ]);
    expect(text.split('\n')).toEqual([
      'TIME                      USER        METHOD     VM                 IMAGE  RESULT',
      '2026-12-03T17:00:00.000Z  root (0)    vm.create  web (vm-0000000a)  cli    ok',
      '2026-12-03T17:00:00.000Z  ops (1001)  image.gc   -                  -      error: conflict',
      '',
    ]);
  });
});

describe('firedeckd audit against a daemon socket', () => {
  let dir: string;
  let db: Db;
  let server: RpcServer;
  let client: DaemonClient;

  beforeEach(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'firedeck-audit-cli-'));
    db = openDb(path.join(dir, 'firedeck.db'));
    const audit = new AuditLog(db);
    for (let i = 0; i < 5; i++) {
      audit.append({
        at: `2026-12-03T17:00:0${i}.000Z`,
        user: i % 2 ? 'ops' : 'root',
        uid: i % 2 ? 1001 : 0,
        method: 'vm.start',
        params: { id: `vm-0000000${i}` },
        ok: true,
        errorKind: null,
        errorMessage: null,
      });
    }
    server = new RpcServer();
    registerAuditHandlers(server, audit);
    await server.listen(path.join(dir, 'd.sock'), 0o600);
    client = await DaemonClient.connect(path.join(dir, 'd.sock'));
  });
  afterEach(async () => {
    client.close();
    await server.close();
    db.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  async function run(args: string[]): Promise<string> {
    const out = new PassThrough();
    let text = '';
    out.on('data', (c: Buffer) => (text += c.toString()));
    const query = parseAuditArgs(args);
    if (query === 'help') throw new Error('help');
    expect(await auditCommand(client, query, out)).toBe(0);
    return text;
  }

  it('prints JSON lines with --json, each line one entry, newest first, up to --limit', async () => {
    const lines = (await run(['--json', '--limit', '3'])).split('\n');
    expect(lines.pop()).toBe('');
    const entries = lines.map((l) => AuditEntry.parse(JSON.parse(l)));
    expect(entries.map((e) => e.vmId)).toEqual(['vm-00000004', 'vm-00000003', 'vm-00000002']);
  });

  it('filters on the daemon and says so when nothing matches', async () => {
    const text = await run(['--user', 'ops']);
    expect(text.split('\n').slice(1, -1)).toHaveLength(2);
    expect(text).toContain('ops (1001)');
    expect(text).not.toContain('root (0)');
    expect(await run(['--method', 'image.*'])).toBe('No audit entries match.\n');
  });
});
