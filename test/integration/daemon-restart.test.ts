import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Vm } from '../../src/shared/protocol/vm';
import type { DaemonRig } from '../rig/daemon';
import { waitForPidExit } from '../../host-daemon/src/system/processes';
import { findExecutable } from '../../host-daemon/src/vms/availability';
import { QEMU_BINARY } from '../../host-daemon/src/vms/qemu/qemuDriver';
import { consoleAttach, linkExists, pidAlive, startSuiteDaemon, stopSuiteDaemon } from './daemon-helpers';

const PREFIX = 'fdt3r';

let daemon: DaemonRig;

beforeAll(async () => {
  daemon = await startSuiteDaemon(PREFIX, '10.213.32.0/24');
});

afterAll(() => stopSuiteDaemon(daemon, PREFIX));

async function waitForExit(pid: number, timeoutMs: number): Promise<void> {
  // The VM is not our child: no exit event reaches us.
  if (!(await waitForPidExit(pid, timeoutMs))) throw new Error(`pid ${pid} still alive after ${timeoutMs} ms`);
}

describe('firedeckd restart safety', { timeout: 600_000 }, () => {
  it('kill -9 with 3 VMs → restart re-adopts the live ones (same pids, console continues), marks the dead one crashed', async () => {
    const vms = await Promise.all(
      ['ra', 'rb', 'rc'].map((name) => daemon.call('vm.create', { name, kind: 'cli', owner: 'ops', image: 'test' })),
    );
    await Promise.all(vms.map((vm) => daemon.call('vm.waitReady', { id: vm.id, timeoutSeconds: 240 })));
    const [a, b, victim] = vms as [Vm, Vm, Vm];

    await daemon.kill9();
    // VMs outlive the daemon.
    for (const vm of vms) expect(pidAlive(vm.pid!)).toBe(true);
    process.kill(victim.pid!, 'SIGKILL');
    await waitForExit(victim.pid!, 10_000);

    const t0 = Date.now();
    await daemon.restart();
    const restartMs = Date.now() - t0;
    expect(daemon.log()).toMatch(/reconciled: adopted 2 .* crashed 1 /);

    const after = new Map((await daemon.call('vm.list', {})).map((v) => [v.id, v]));
    for (const vm of [a, b]) {
      const now = after.get(vm.id)!;
      expect(now.state).toBe('running');
      expect(now.pid).toBe(vm.pid);
      expect(now.address).toBe(vm.address);
      expect(linkExists(vm.tap!)).toBe(true);
    }
    const dead = after.get(victim.id)!;
    expect(dead.state).toBe('crashed');
    expect(dead.pid).toBeNull();
    expect(dead.address).toBeNull();
    expect(dead.tap).toBeNull();
    expect(dead.lastError).toMatch(/gone/);
    expect(linkExists(victim.tap!)).toBe(false);
    expect(fs.existsSync(path.join(daemon.runDir, 'vms', victim.id))).toBe(false);

    // The console pump reconnected: what the guest prints now lands in the same log.
    for (const vm of [a, b]) {
      const attach = await consoleAttach(path.join(daemon.runDir, 'vms', vm.id, 'console.sock'));
      try {
        attach.write(`echo after-restart-$((${vm.pid} + 1))\n`);
        await attach.waitFor(new RegExp(`after-restart-${vm.pid! + 1}`), 30_000);
      } finally {
        attach.close();
      }
      const tail = await daemon.call('vm.console.tail', { id: vm.id, lines: 2000 });
      expect(tail.lines).toContain('FIREDECK-READY vm');
      expect(tail.lines.some((l) => l.includes(`after-restart-${vm.pid! + 1}`) && !l.includes('$(('))).toBe(true);
    }

    // A crashed VM starts again with a fresh lease; meanwhile an adopted one restarts (graceful stop, new boot).
    const [again, restarted] = await Promise.all([
      daemon.call('vm.start', { id: victim.id }),
      daemon.call('vm.restart', { id: a.id, timeoutSeconds: 120 }),
    ]);
    expect(again.address).not.toBeNull();
    expect(restarted.pid).not.toBe(a.pid);
    expect(pidAlive(a.pid!)).toBe(false);
    expect(restarted.address).toBe(a.address);
    await Promise.all([victim, a].map((vm) => daemon.call('vm.waitReady', { id: vm.id, timeoutSeconds: 240 })));
    console.log(`[daemon-restart] restart + reconcile: ${restartMs} ms`);
  });

  it('removes orphans it created: a hypervisor no VM owns, an unknown TAP with its prefix, stale run dirs', async () => {
    const orphanDir = path.join(daemon.runDir, 'vms', 'vm-00000000000000aa');
    fs.mkdirSync(orphanDir, { recursive: true });
    execFileSync('ip', ['tuntap', 'add', 'dev', `${PREFIX}tap77`, 'mode', 'tap']);
    // What a daemon killed between starting QEMU and recording it leaves behind: a QEMU in the driver's shape
    // (qemuArgs: the PATH's binary, -name firedeck-<id>, its sockets and pid file in the VM's run dir,
    // daemonized), here without a guest. Reconcile kills only such processes, not any naming the run dir.
    execFileSync(findExecutable(QEMU_BINARY)!, [
      '-name',
      'firedeck-vm-00000000000000aa,process=firedeck-vm-00000000000000aa',
      '-M',
      'none',
      '-display',
      'none',
      '-nodefaults',
      '-chardev',
      `socket,id=serial0,path=${path.join(orphanDir, 'serial.sock')},server=on,wait=off`,
      '-qmp',
      `unix:${path.join(orphanDir, 'qmp.sock')},server=on,wait=off`,
      '-pidfile',
      path.join(orphanDir, 'qemu.pid'),
      '-daemonize',
    ]);
    const orphanPid = Number(fs.readFileSync(path.join(orphanDir, 'qemu.pid'), 'utf8'));
    expect(pidAlive(orphanPid)).toBe(true);
    await daemon.kill9();
    await daemon.restart();
    expect(daemon.log()).toMatch(
      new RegExp(`orphans removed 3 .*process:${orphanPid} tap:fdt3rtap77 run:vm-00000000000000aa`),
    );
    expect(pidAlive(orphanPid)).toBe(false);
    expect(linkExists(`${PREFIX}tap77`)).toBe(false);
    expect(fs.existsSync(orphanDir)).toBe(false);
    const live = (await daemon.call('vm.list', {})).filter((v) => v.state === 'running');
    expect(live).toHaveLength(3);
  });
});
