import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { FiredeckError } from '../../../src/shared/errors';
import type { Vm } from '../../../src/shared/protocol/vm';
import { ChannelService, type ChannelAuditRecord, type ChannelVms } from './channelService';

const VM = {
  id: 'vm-0123456789abcdef',
  name: 'demo',
  kind: 'cli',
  state: 'stopped',
  address: null,
  hostKey: null,
  ready: [],
} as unknown as Vm;

const vms: ChannelVms = {
  list: () => [VM],
  get: (id) => {
    if (id === VM.id) return VM;
    throw new FiredeckError('not_found', `No VM ${id}`);
  },
  consoleTail: () => ({ lines: ['booted'], truncated: false }),
  followConsole: () => () => undefined,
  writeConsole: () => undefined,
  waitReady: () => Promise.resolve(VM),
  vmStateDir: () => '/nonexistent',
  guestKeyDir: () => '/nonexistent',
};

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

/** Opens one channel on a real unix socket pair; resolves with what the service audited once the client is done. */
/** The caller as the kernel named it (SO_PEERCRED). */
const ALICE = { user: 'alice', uid: 1234, gid: 1234, pid: 4321, claimed: null };

async function openOnce(params: unknown): Promise<ChannelAuditRecord[]> {
  const records: ChannelAuditRecord[] = [];
  const service = new ChannelService(vms, undefined, (r) => records.push(r));
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'firedeck-channel-audit-'));
  dirs.push(dir);
  const socketPath = path.join(dir, 's');
  const server = net.createServer((socket) => service.open(socket, 1, params, ALICE));
  await new Promise<void>((resolve) => server.listen(socketPath, resolve));
  try {
    await new Promise<void>((resolve, reject) => {
      const client = net.connect(socketPath);
      client.on('data', () => undefined);
      client.once('close', () => resolve());
      client.once('error', reject);
    });
  } finally {
    server.close();
  }
  return records;
}

describe('channel.open in the audit log', () => {
  it('records who, the kind and the VM of an open channel', async () => {
    const records = await openOnce({ kind: 'console', vm: 'demo', lines: 10, follow: false, attach: false });
    expect(records).toEqual([
      {
        method: 'channel.open',
        caller: ALICE,
        params: { kind: 'console', vm: 'demo', vmId: VM.id, follow: false, attach: false },
        ok: true,
        error: null,
      },
    ]);
  });

  it("records a refused open with its error kind, and never a shell's command line", async () => {
    const records = await openOnce({ kind: 'shell', vm: 'demo', command: 'echo hunter2 > ~/.token', pty: null });
    expect(records).toHaveLength(1);
    expect(records[0]).toMatchObject({
      ok: false,
      params: { kind: 'shell', vm: 'demo', vmId: null, command: true, pty: false },
    });
    expect(records[0]!.error?.kind).toBe('invalid_state');
    expect(JSON.stringify(records)).not.toContain('hunter2');
  });

  it('keeps nothing of malformed params but what is safe to show', async () => {
    const password = randomBytes(8).toString('base64url');
    const records = await openOnce({ kind: 'vnc', vm: '../../etc/passwd', password });
    expect(records[0]).toMatchObject({ ok: false, params: { kind: 'vnc', vm: null, vmId: null } });
    expect(records[0]!.error?.kind).toBe('invalid_params');
    expect(JSON.stringify(records[0]!.params)).not.toContain(password);
  });
});
