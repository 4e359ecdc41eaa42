import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { deleteLink } from '../net/links';
import { newVm } from '../store/testing/newVm';
import { childExited, pidAlive, readCmdline } from '../system/processes';
import { qmpServer } from './testing/qmpServer';
import { testVmService, type TestVmService } from './testing/testVmService';

// Reconcile (re)creates the daemon's bridge: this file's own name, never another suite's.
const BRIDGE = 'fdrcbr2';
const PREFIX = 'fdrc';
const CIDR = '10.213.141.0/24';

const root = process.getuid?.() === 0;
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'firedeck-stopping-'));
const stateDir = path.join(dir, 'state');
const open: TestVmService[] = [];

function daemon(): TestVmService {
  const made = testVmService({ stateDir, runDir: path.join(dir, 'run'), bridge: BRIDGE, prefix: PREFIX, cidr: CIDR });
  open.push(made);
  return made;
}

afterEach(() => {
  for (const made of open.splice(0)) made.close();
});

afterAll(async () => {
  if (root) await deleteLink(BRIDGE).catch(() => undefined);
  fs.rmSync(dir, { recursive: true, force: true });
});

describe.skipIf(!root)('reconcile: a VM left stopping', () => {
  it('becomes stopped (not crashed) when its hypervisor is gone, keeping its disk and address', async () => {
    const id = 'vm-00000000000000e1';
    const { service, vms, leases } = daemon();
    vms.insert(newVm(id, 'halfstopped'));
    const lease = leases.acquire(id);
    // A hypervisor that has exited since: its pid is dead (a reaped child of ours, not reused this soon).
    const gone = spawn('true');
    await childExited(gone);
    vms.update(id, {
      state: 'stopping',
      handle: {
        pid: gone.pid!,
        cmdline: 'qemu-system-x86_64\0',
        controlSocket: path.join(dir, 'run', 'vms', id, 'qmp.sock'),
        console: { kind: 'unix-socket', path: path.join(dir, 'run', 'vms', id, 'serial.sock') },
      },
    });
    const vmDir = path.join(stateDir, 'vms', id);
    fs.mkdirSync(vmDir, { recursive: true });
    fs.writeFileSync(path.join(vmDir, 'rootfs.qcow2'), 'disk');
    fs.mkdirSync(path.join(dir, 'run', 'vms', id), { recursive: true });

    const report = await service.reconcile();

    const after = vms.require(id);
    expect(after.vm.state).toBe('stopped');
    expect(after.vm.lastError).toBeNull();
    expect(after.handle).toBeNull();
    expect(after.vm.pid).toBeNull();
    expect(report.crashed).not.toContain(id);
    expect(fs.existsSync(path.join(vmDir, 'rootfs.qcow2'))).toBe(true);
    expect(fs.existsSync(path.join(dir, 'run', 'vms', id))).toBe(false);
    // A stopped VM keeps its address, as one stopped by the power button does.
    expect(leases.get(id)?.address).toBe(lease.address);
  });

  it('has its stop finished when its hypervisor still runs (power button pressed again, then stopped)', async () => {
    const id = 'vm-00000000000000e2';
    const { service, vms } = daemon();
    vms.insert(newVm(id, 'stillstopping'));
    const runDir = path.join(dir, 'run', 'vms', id);
    fs.mkdirSync(runDir, { recursive: true });
    // The hypervisor: a live process whose monitor (a real QMP socket) powers it off on system_powerdown, as
    // QEMU with -no-reboot does; and a serial socket, so that an adoption would succeed too.
    const hypervisor = spawn('sleep', ['600'], { stdio: 'ignore' });
    await new Promise<void>((resolve) => hypervisor.once('spawn', resolve));
    const commands: string[] = [];
    const sockets: net.Socket[] = [];
    const qmp = qmpServer({
      reply: (cmd) => {
        commands.push(cmd.execute);
        return cmd.execute === 'query-status' ? { status: 'running' } : {};
      },
      after: (cmd, socket) => {
        if (cmd.execute === 'system_powerdown' || cmd.execute === 'quit') {
          hypervisor.kill('SIGTERM');
          void childExited(hypervisor).then(() => socket.destroy());
        }
      },
    });
    const serial = net.createServer((socket) => {
      sockets.push(socket);
      socket.on('error', () => undefined);
    });
    const qmpSocket = path.join(runDir, 'qmp.sock');
    const serialSocket = path.join(runDir, 'serial.sock');
    await new Promise<void>((resolve) => qmp.listen(qmpSocket, resolve));
    await new Promise<void>((resolve) => serial.listen(serialSocket, resolve));
    try {
      vms.update(id, {
        state: 'stopping',
        handle: {
          pid: hypervisor.pid!,
          cmdline: readCmdline(hypervisor.pid!)!,
          controlSocket: qmpSocket,
          console: { kind: 'unix-socket', path: serialSocket },
        },
      });

      const report = await service.reconcile();

      expect(commands).toContain('system_powerdown');
      expect(pidAlive(hypervisor.pid!)).toBe(false);
      const after = vms.require(id);
      expect(after.vm.state).toBe('stopped');
      expect(after.handle).toBeNull();
      expect(report.stopped).toEqual([id]);
      expect(report.adopted).not.toContain(id);
    } finally {
      if (hypervisor.exitCode === null && hypervisor.signalCode === null) hypervisor.kill('SIGKILL');
      for (const socket of sockets) socket.destroy();
      qmp.destroyAll();
      await new Promise<void>((resolve) => qmp.close(() => resolve()));
      await new Promise<void>((resolve) => serial.close(() => resolve()));
    }
  });
});
