import { execFile, spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isFiredeckError } from '../../src/shared/errors';
import type { Vm } from '../../src/shared/protocol/vm';
import { connectGuest } from '../../host-daemon/src/guest/guestSsh';
import { startDaemon, type DaemonRig } from '../rig/daemon';
import { waitForOutput } from '../rig/tmp';
import Database from 'better-sqlite3';
import { AuditLog } from '../../host-daemon/src/store/auditLog';
import { installTestImage } from '../rig/testImage';
import {
  consoleAttach,
  linkExists,
  linksWithPrefix,
  permanentNeighbours,
  pidAlive,
  removeLinks,
  subscribeEvents,
  type EventLog,
} from './daemon-helpers';

const run = promisify(execFile);
const PREFIX = 'fdt3l';
const BRIDGE = `${PREFIX}br0`;
const CONSOLE_CAP = 64 * 1024;
const BOOT_MS = 240_000;

let daemon: DaemonRig;
let events: EventLog;
// Guests for the later tests boot while the first test runs: TCG boots dominate this suite's wall time.
let netVm: Promise<Vm>;
let floodVm: Promise<Vm>;

beforeAll(async () => {
  removeLinks(PREFIX);
  daemon = await startDaemon({
    env: {
      FIREDECK_BRIDGE: BRIDGE,
      FIREDECK_CIDR: '10.213.31.0/24',
      FIREDECK_DEVICE_PREFIX: PREFIX,
      FIREDECK_CONSOLE_LOG_MAX_BYTES: String(CONSOLE_CAP),
    },
  });
  await installTestImage(daemon.stateDir);
  events = await subscribeEvents(daemon.socketPath);
  netVm = daemon.call('vm.create', { name: 'net', kind: 'cli', owner: 'alice', image: 'test' });
  floodVm = daemon.call('vm.create', { name: 'flood', kind: 'cli', owner: 'alice', image: 'test' });
  // Each test awaits its own; keep an early failure from surfacing as an unhandled rejection.
  netVm.catch(() => undefined);
  floodVm.catch(() => undefined);
});

afterAll(async () => {
  events?.close();
  if (daemon) {
    for (const vm of await daemon.call('vm.list', {}).catch(() => [] as Vm[])) {
      await daemon.call('vm.destroy', { id: vm.id }).catch(() => undefined);
    }
    await daemon.stop();
  }
  removeLinks(PREFIX);
});

async function expectError(p: Promise<unknown>, kind: string): Promise<void> {
  try {
    await p;
  } catch (err) {
    expect(isFiredeckError(err) ? err.kind : String(err)).toBe(kind);
    return;
  }
  throw new Error(`expected a ${kind} error`);
}

function readyEvent(id: string, marker: string) {
  return (e: { type: string; vmId?: string; marker?: string }): boolean =>
    e.type === 'vm.ready' && e.vmId === id && e.marker === marker;
}

describe('firedeckd VM lifecycle on real QEMU guests', { timeout: 300_000 }, () => {
  it('create → ready event → console readable → graceful stop → destroy', async () => {
    const t0 = Date.now();
    const created = await daemon.call('vm.create', { name: 'life', kind: 'cli', owner: 'alice', image: 'test' });
    expect(created.state).toBe('booting');
    expect(created.address).toMatch(/^10\.213\.31\.\d+$/);
    expect(created.tap).toMatch(new RegExp(`^${PREFIX}tap\\d+$`));
    expect(pidAlive(created.pid!)).toBe(true);
    // The host knows the guest's MAC for its address (a permanent neighbour entry): it never ARPs for a guest,
    // and no other guest can answer in its place.
    expect(permanentNeighbours(BRIDGE)).toContainEqual({ dst: created.address, lladdr: created.mac });
    await events.waitFor(readyEvent(created.id, 'vm'), BOOT_MS, 'vm.ready vm');
    const bootMs = Date.now() - t0;

    const running = await daemon.call('vm.get', { id: created.id });
    expect(running.state).toBe('running');
    expect(running.ready).toContain('vm');
    const mine = events.events.filter(
      (e) => ('vm' in e && e.vm.id === created.id) || ('vmId' in e && e.vmId === created.id),
    );
    expect(mine.map((e) => (e.type === 'vm.state' ? `state:${e.to}` : e.type)).slice(0, 4)).toEqual([
      'vm.created',
      'state:booting',
      'state:running',
      'vm.ready',
    ]);

    const tail = await daemon.call('vm.console.tail', { id: created.id, lines: 500 });
    expect(tail.lines).toContain('FIREDECK-READY vm');

    const stopped = await daemon.call('vm.stop', { id: created.id, timeoutSeconds: 120 });
    expect(stopped.state).toBe('stopped');
    expect(pidAlive(created.pid!)).toBe(false);
    expect(stopped.pid).toBeNull();
    // A graceful stop keeps the VM's address and TAP for its next boot.
    expect(stopped.address).toBe(created.address);
    expect(events.events.some((e) => e.type === 'vm.state' && e.vm.id === created.id && e.to === 'stopping')).toBe(
      true,
    );
    const log = daemon.log();
    expect(log).not.toMatch(new RegExp(`${created.id}\\) ignored the power button`));

    const destroyed = await daemon.call('vm.destroy', { id: created.id });
    expect(destroyed.state).toBe('destroyed');
    expect(linkExists(created.tap!)).toBe(false);
    expect(permanentNeighbours(BRIDGE).map((n) => n.dst)).not.toContain(created.address);
    expect(fs.existsSync(path.join(daemon.stateDir, 'vms', created.id))).toBe(false);
    expect((await daemon.call('vm.list', {})).map((v) => v.id)).not.toContain(created.id);
    await events.waitFor((e) => e.type === 'vm.destroyed' && e.vmId === created.id, 1000, 'vm.destroyed');
    console.log(`[daemon-lifecycle] boot to FIREDECK-READY vm: ${bootMs} ms`);
  });

  it('a guest answers on its leased address (sshd on port 22) and firedeckd shell reaches it with the pinned key', async () => {
    const vm = await netVm;
    const ready = await daemon.call('vm.waitReady', { id: vm.id, marker: 'sshd', timeoutSeconds: BOOT_MS / 1000 });
    expect(ready.hostKey).toMatch(/^ssh-ed25519 [A-Za-z0-9+/=]+$/);
    const banner = await new Promise<string>((resolve, reject) => {
      const s = net.connect(22, vm.address!);
      s.setTimeout(10_000, () => reject(new Error('no SSH banner within 10 s')));
      s.once('data', (b: Buffer) => {
        s.destroy();
        resolve(b.toString());
      });
      s.once('error', reject);
    });
    expect(banner).toMatch(/^SSH-2\.0-OpenSSH/);

    const { stdout } = await run(daemon.firedeckdCommand, ['shell', 'net', '--', 'id', '-un;', 'hostname'], {
      timeout: 60_000,
    });
    expect(stdout.split('\n')).toEqual(expect.arrayContaining(['firedeck', 'net']));

    // Only the pinned host key is trusted: the same guest under another pinned key is refused.
    const other = path.join(daemon.runDir, 'other_ed25519');
    await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', other]);
    const otherKey = fs.readFileSync(`${other}.pub`, 'utf8').split(' ').slice(0, 2).join(' ');
    // The daemon's guest SSH trusts only the pinned key: the same guest under another pinned key is refused.
    await expect(
      connectGuest({
        vmName: 'net',
        address: vm.address!,
        hostKey: otherKey,
        keyDir: path.join(daemon.stateDir, 'keys'),
      }),
    ).rejects.toMatchObject({ kind: 'host_key_mismatch' });

    // The guest's user (group dialout) can write to ttyS0: a FIREDECK-HOSTKEY it forges later in the boot is
    // ignored, and firedeckd shell keeps verifying against the key the boot announced first.
    const attach = await consoleAttach(path.join(daemon.runDir, 'vms', vm.id, 'console.sock'));
    try {
      await run(
        daemon.firedeckdCommand,
        ['shell', 'net', '--', `printf '\\nFIREDECK-HOSTKEY %s\\n' '${otherKey}' > /dev/ttyS0`],
        { timeout: 60_000 },
      );
      // The daemon scans a whole line for markers before it passes the line on to attached consoles.
      await attach.waitFor(new RegExp(`FIREDECK-HOSTKEY ${otherKey.replace(/[+/]/g, '\\$&')}\\r?\\n`), 30_000);
    } finally {
      attach.close();
    }
    expect((await daemon.call('vm.get', { id: vm.id })).hostKey).toBe(ready.hostKey);
    const { stdout: still } = await run(daemon.firedeckdCommand, ['shell', 'net', '--', 'id', '-un'], {
      timeout: 60_000,
    });
    expect(still.split('\n')).toContain('firedeck');

    // The config drive as the guest mounts it: config.json (secrets on browser VMs) is root's alone.
    const { stdout: drive } = await run(
      daemon.firedeckdCommand,
      [
        'shell',
        'net',
        '--',
        'stat -c "%n %a %U:%G" /run/firedeck/config/config.json /run/firedeck/config; ' +
          'cat /run/firedeck/config/config.json > /dev/null 2>&1 && echo readable || echo unreadable',
      ],
      { timeout: 60_000 },
    );
    expect(drive.split('\n')).toEqual(
      expect.arrayContaining([
        '/run/firedeck/config/config.json 600 root:root',
        '/run/firedeck/config 755 root:root',
        'unreadable',
      ]),
    );
    expect(daemon.log()).toMatch(new RegExp(`net \\(${vm.id}\\): ignored a later FIREDECK-HOSTKEY`));

    const { stdout: ls } = await run(daemon.firedeckdCommand, ['vm', 'ls'], { timeout: 10_000 });
    expect(ls).toMatch(new RegExp(`${vm.id}\\s+net\\s+cli\\s+running\\s+${vm.address!.replace(/\./g, '\\.')}`));
  });

  it('a guest flooding its console leaves the host log within its cap, and attach is two-way', async () => {
    const vm = await floodVm;
    await daemon.call('vm.waitReady', { id: vm.id, marker: 'sshd', timeoutSeconds: BOOT_MS / 1000 });
    const attach = await consoleAttach(path.join(daemon.runDir, 'vms', vm.id, 'console.sock'));
    try {
      attach.write('\n');
      attach.write('echo $((6*7))-two-way\n');
      await attach.waitFor(/42-two-way/, 30_000);
      // `firedeckd console --follow` (what an operator runs over SSH) sees what the guest prints from now on.
      const follower = spawn(daemon.firedeckdCommand, ['console', 'flood', '--follow', '--lines', '1'], {
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      try {
        const followed = waitForOutput(follower.stdout, /56-followed/, 30_000, 'firedeckd console --follow');
        await waitForOutput(follower.stderr, /\[following flood/, 30_000, 'firedeckd console --follow');
        attach.write('echo $((7*8))-followed\n');
        await followed;
      } finally {
        follower.kill();
      }
      attach.write('firedeck-flood 5000\n');
      await attach.waitFor(/FIREDECK-FLOOD-DONE 5000/, 240_000);
    } finally {
      attach.close();
    }
    const dir = path.join(daemon.stateDir, 'vms', vm.id);
    const files = fs.readdirSync(dir).filter((f) => f.startsWith('console.log'));
    expect(files.sort()).toEqual(['console.log', 'console.log.1']);
    let total = 0;
    for (const f of files) {
      const size = fs.statSync(path.join(dir, f)).size;
      expect(size).toBeLessThanOrEqual(CONSOLE_CAP);
      total += size;
    }
    expect(total).toBeLessThanOrEqual(2 * CONSOLE_CAP);
    const tail = await daemon.call('vm.console.tail', { id: vm.id, lines: 5 });
    expect(tail.truncated).toBe(true);
    expect(tail.lines.join('\n')).toContain('FIREDECK-FLOOD-DONE 5000');
    await daemon.call('vm.destroy', { id: vm.id });
  });

  it('conflicting calls on one VM get conflict; wrong-state calls get invalid_state', async () => {
    // The guest of the network test, still running.
    const vm = await netVm;
    expect((await daemon.call('vm.get', { id: vm.id })).state).toBe('running');
    await expectError(daemon.call('vm.start', { id: vm.id }), 'invalid_state');
    const stop = daemon.call('vm.stop', { id: vm.id, timeoutSeconds: 120 });
    const results = await Promise.allSettled([
      daemon.call('vm.destroy', { id: vm.id }),
      daemon.call('vm.restart', { id: vm.id }),
    ]);
    for (const r of results) {
      expect(r.status).toBe('rejected');
      if (r.status === 'rejected') expect(isFiredeckError(r.reason, 'conflict')).toBe(true);
    }
    expect((await stop).state).toBe('stopped');
    await expectError(daemon.call('vm.waitReady', { id: vm.id, timeoutSeconds: 1 }), 'invalid_state');
    expect((await daemon.call('vm.destroy', { id: vm.id })).state).toBe('destroyed');
  });

  it('waitReady fails at its deadline with the last console lines', async () => {
    const vm = await daemon.call('vm.create', { name: 'slow', kind: 'cli', owner: 'alice', image: 'test' });
    try {
      await daemon.call('vm.waitReady', { id: vm.id, marker: 'never', timeoutSeconds: 1 });
      throw new Error('expected a timeout');
    } catch (err) {
      expect(isFiredeckError(err, 'timeout')).toBe(true);
      if (isFiredeckError(err)) expect(Array.isArray(err.details?.lastLines)).toBe(true);
    }
    await daemon.call('vm.destroy', { id: vm.id });
  });

  it('bad input gets typed errors, leaves nothing behind, and the daemon keeps serving', async () => {
    const before = linksWithPrefix(`${PREFIX}tap`);
    const vmDirs = path.join(daemon.stateDir, 'vms');
    const dirsBefore = fs.existsSync(vmDirs) ? fs.readdirSync(vmDirs) : [];
    const vmsBefore = await daemon.call('vm.list', {});
    await expectError(daemon.call('vm.get', { id: 'vm-00000000deadbeef' }), 'not_found');
    await expectError(daemon.call('vm.stop', { id: 'vm-00000000deadbeef' }), 'not_found');
    await expectError(daemon.call('vm.get', { id: '../etc/passwd' }), 'invalid_params');
    await expectError(
      daemon.call('vm.create', { name: 'a/b', kind: 'cli', owner: 'alice', image: 'test' }),
      'invalid_params',
    );
    await expectError(
      daemon.call('vm.create', { name: 'big', kind: 'cli', owner: 'alice', image: 'test', memoryMib: 10_000_000 }),
      'invalid_params',
    );
    await expectError(
      daemon.call('vm.create', { name: 'noimg', kind: 'cli', owner: 'alice', image: 'no-such-image' }),
      'not_found',
    );
    const [parseErr] = (await daemon.raw('{not json\n', 1)) as { error: { code: number } }[];
    expect(parseErr!.error.code).toBe(-32700);
    const [tooBig] = (await daemon.raw(
      `{"jsonrpc":"2.0","id":1,"method":"vm.list","params":{"x":"${'a'.repeat(2 * 1024 * 1024)}"}}\n`,
      1,
    )) as {
      error: { data: { kind: string } };
    }[];
    expect(tooBig!.error.data.kind).toBe('frame_too_large');
    expect(linksWithPrefix(`${PREFIX}tap`)).toEqual(before);
    expect(fs.existsSync(vmDirs) ? fs.readdirSync(vmDirs) : []).toEqual(dirsBefore);
    expect(await daemon.call('vm.list', {})).toEqual(vmsBefore);
    // Mutating calls that reached a handler are in the append-only audit log, failures included.
    const db = new Database(path.join(daemon.stateDir, 'firedeck.db'), { readonly: true });
    try {
      const entries = new AuditLog(db).recent(50);
      expect(
        entries.find((e) => e.method === 'vm.create' && (e.params as { name?: string }).name === 'noimg'),
      ).toMatchObject({ ok: false, errorKind: 'not_found' });
      expect(entries.filter((e) => e.method === 'vm.destroy' && e.ok).length).toBeGreaterThan(0);
    } finally {
      db.close();
    }
    const info = await daemon.call('daemon.info', {});
    expect(info.drivers.find((d) => d.name === 'qemu')?.available).toBe(true);
  });
});
