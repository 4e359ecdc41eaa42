import { execFile, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Vm } from '../../src/shared/protocol/vm';
import type { DaemonRig } from '../rig/daemon';
import { QEMU_SANDBOX } from '../../host-daemon/src/vms/qemu/qemuDriver';
import { consoleAttach, pidAlive, startSuiteDaemon, stopSuiteDaemon } from './daemon-helpers';

const run = promisify(execFile);
const PREFIX = 'fdt3q';
const BOOT_S = 240;

let daemon: DaemonRig;

beforeAll(async () => {
  daemon = await startSuiteDaemon(PREFIX, '10.213.43.0/24');
});

afterAll(() => stopSuiteDaemon(daemon, PREFIX));

/** Real, effective, saved and filesystem uid of a process (/proc/<pid>/status). */
function uids(pid: number): number[] {
  const line = /^Uid:\s+(.*)$/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))![1]!;
  return line.trim().split(/\s+/).map(Number);
}

/** `cat FILE` as `uid` (setpriv, no groups): its exit status and stderr. */
function catAs(uid: number, file: string): { status: number | null; stderr: string } {
  const res = spawnSync('setpriv', [`--reuid=${uid}`, `--regid=${uid}`, '--clear-groups', 'cat', file], {
    encoding: 'utf8',
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  return { status: res.status, stderr: res.stderr };
}

describe('QEMU confined: -sandbox, an unprivileged uid per VM, only its own files', { timeout: 900_000 }, () => {
  it('runs each VM as its own non-root uid under -sandbox; boots, console, shell, stop/start, re-adoption work', async () => {
    const info = await daemon.call('daemon.info', {});
    expect(info.drivers.find((d) => d.name === 'qemu')?.confinement).toMatch(/^sandboxed: -sandbox on,/);

    const [a, b] = (await Promise.all(
      ['sa', 'sb'].map((name) => daemon.call('vm.create', { name, kind: 'cli', owner: 'ops', image: 'test' })),
    )) as [Vm, Vm];
    await Promise.all([a, b].map((vm) => daemon.call('vm.waitReady', { id: vm.id, timeoutSeconds: BOOT_S })));

    // ps shows QEMU as a non-root user with the whole sandbox; the kernel agrees.
    for (const vm of [a, b]) {
      const ps = spawnSync('ps', ['-o', 'user=,args=', '-p', String(vm.pid)], { encoding: 'utf8' }).stdout.trim();
      expect(ps).not.toMatch(/^root\s/);
      expect(ps).toContain(`-sandbox ${QEMU_SANDBOX}`);
      expect(QEMU_SANDBOX).toBe('on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny');
      const ids = uids(vm.pid!);
      expect(
        ids.every((u) => u === ids[0] && u !== 0),
        `uids ${ids.join(' ')}`,
      ).toBe(true);
      const status = fs.readFileSync(`/proc/${vm.pid}/status`, 'utf8');
      expect(status).toMatch(/^Seccomp:\s+2$/m);
      expect(status).toMatch(/^NoNewPrivs:\s+1$/m);
    }
    const uidA = uids(a.pid!)[0]!;
    const uidB = uids(b.pid!)[0]!;
    expect(uidA).not.toBe(uidB);

    // Neither VM's QEMU uid can open the other's disk, config drive or sockets, nor its own by path (it was
    // handed them open); QEMU holds them as descriptors.
    const diskB = path.join(daemon.stateDir, 'vms', b.id, 'rootfs.raw');
    const configB = path.join(daemon.stateDir, 'vms', b.id, 'config.img');
    for (const file of [diskB, configB, path.join(daemon.stateDir, 'vms', a.id, 'rootfs.raw')]) {
      const res = catAs(uidA, file);
      expect(res.status, file).not.toBe(0);
      expect(res.stderr).toMatch(/Permission denied/);
    }
    for (const file of [diskB, configB]) {
      const st = fs.statSync(file);
      expect([st.uid, st.mode & 0o777], file).toEqual([0, 0o600]);
    }
    const qmpB = path.join(daemon.runDir, 'vms', b.id, 'qmp.sock');
    expect(catAs(uidA, qmpB).stderr).toMatch(/Permission denied/);
    const heldByA = fs.readdirSync(`/proc/${a.pid}/fd`).map((fd) => {
      try {
        return fs.readlinkSync(`/proc/${a.pid}/fd/${fd}`);
      } catch {
        return '';
      }
    });
    expect(heldByA).toContain(path.join(daemon.stateDir, 'vms', a.id, 'rootfs.raw'));
    expect(heldByA).not.toContain(diskB);
    expect(heldByA).toContain('/dev/net/tun');

    // Console and shell work.
    const attach = await consoleAttach(path.join(daemon.runDir, 'vms', a.id, 'console.sock'));
    try {
      attach.write('echo sandboxed-$((20 + 22))\n');
      await attach.waitFor(/sandboxed-42/, 30_000);
    } finally {
      attach.close();
    }
    const { stdout } = await run(daemon.firedeckdCommand, ['shell', 'sa', '--', 'id', '-un'], { timeout: 60_000 });
    expect(stdout.trim()).toBe('firedeck');

    // kill -9 of the daemon, restart: the sandboxed QEMUs are re-adopted with the same pids, and still answer.
    await daemon.kill9();
    for (const vm of [a, b]) expect(pidAlive(vm.pid!)).toBe(true);
    await daemon.restart();
    expect(daemon.log()).toMatch(/reconciled: adopted 2 /);
    const after = new Map((await daemon.call('vm.list', {})).map((v) => [v.id, v]));
    for (const vm of [a, b]) {
      expect(after.get(vm.id)?.state).toBe('running');
      expect(after.get(vm.id)?.pid).toBe(vm.pid);
    }
    const again = await run(daemon.firedeckdCommand, ['shell', 'sb', '--', 'id', '-un'], { timeout: 60_000 });
    expect(again.stdout.trim()).toBe('firedeck');

    // stop (graceful, over QMP) and start again: a new sandboxed QEMU that boots.
    const stopped = await daemon.call('vm.stop', { id: a.id, timeoutSeconds: 120 });
    expect(stopped.state).toBe('stopped');
    expect(pidAlive(a.pid!)).toBe(false);
    const started = await daemon.call('vm.start', { id: a.id });
    await daemon.call('vm.waitReady', { id: a.id, timeoutSeconds: BOOT_S });
    expect(uids(started.pid!)[0]).not.toBe(0);

    // destroy ends it.
    await daemon.call('vm.destroy', { id: a.id });
    expect(pidAlive(started.pid!)).toBe(false);
  });
});
