import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { bridgeMac, deleteLink, permanentNeighbours } from '../net/links';
import { childExited, pidAlive, readCmdline } from '../system/processes';
import type { VmLaunchSpec } from './driver';
import { FirecrackerDriver } from './firecracker/driver';
import { QEMU_BINARY, QemuDriver, qemuArgs } from './qemu/qemuDriver';
import { testVmService, type TestVmService } from './testing/testVmService';

// Reconcile (re)creates the daemon's bridge: this file's own names, never another suite's.
const BRIDGE = 'fdrcbr0';
const PREFIX = 'fdrc';
const CIDR = '10.213.141.0/24';

const root = process.getuid?.() === 0;

let dir: string;
let binDir: string;
let savedPath: string | undefined;
let made: TestVmService | undefined;
const children: ChildProcess[] = [];

/** The argv the QEMU driver builds for a VM `id` whose run dir is under `vmRunRoot`. */
function driverArgv(vmRunRoot: string, id: string): string[] {
  const spec: VmLaunchSpec = {
    id,
    name: id,
    kind: 'cli',
    vcpus: 1,
    memoryMib: 256,
    kernelPath: '/img/vmlinuz',
    initrdPath: null,
    kernelArgs: 'console=ttyS0 root=/dev/vda rw',
    rootfsPath: path.join(dir, 'state', 'vms', id, 'rootfs.qcow2'),
    rootfsFormat: 'qcow2',
    configDrivePath: null,
    tap: null,
    mac: null,
    runDir: path.join(vmRunRoot, id),
  };
  return qemuArgs(spec, 'tcg');
}

/** Starts a process in its own group and waits (on /proc, with a deadline) until it runs `argv` after its exec. */
async function run(command: string, args: string[], finalArgv: string[]): Promise<ChildProcess> {
  const child = spawn(command, args, { detached: true, stdio: ['pipe', 'ignore', 'ignore'] });
  children.push(child);
  await new Promise<void>((resolve, reject) => {
    child.once('spawn', resolve);
    child.once('error', reject);
  });
  const want = `${finalArgv.join('\0')}\0`;
  const deadline = Date.now() + 10_000;
  while (readCmdline(child.pid!) !== want) {
    if (Date.now() > deadline || child.exitCode !== null) throw new Error(`${command} never ran ${finalArgv[0]}`);
    await new Promise((r) => setTimeout(r, 20));
  }
  return child;
}

beforeAll(() => {
  if (!root) return;
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'firedeck-reconcile-'));
  // Readable by `nobody`, who runs the stand-in below too.
  fs.chmodSync(dir, 0o755);
  binDir = path.join(dir, 'bin');
  fs.mkdirSync(binDir, { mode: 0o755 });
  // A harmless stand-in for QEMU: a program of that name that only waits. The recogniser checks argv[0] and
  // the executable against the qemu-system-x86_64 on PATH, so PATH leads to this one for the test.
  for (const file of [path.join(binDir, QEMU_BINARY), path.join(dir, 'waiter')]) {
    execFileSync('gcc', ['-x', 'c', '-o', file, '-'], {
      input: '#include <unistd.h>\nint main(void) { for (;;) pause(); }\n',
    });
  }
  savedPath = process.env.PATH;
  process.env.PATH = `${binDir}:${process.env.PATH ?? ''}`;
});

afterEach(() => {
  made?.close();
  made = undefined;
});

afterAll(async () => {
  for (const child of children) {
    if (child.exitCode !== null || child.signalCode !== null) continue;
    try {
      process.kill(-child.pid!, 'SIGKILL');
    } catch {
      // gone
    }
    await childExited(child);
  }
  if (!root) return;
  process.env.PATH = savedPath;
  await deleteLink(BRIDGE).catch(() => undefined);
  fs.rmSync(dir, { recursive: true, force: true });
});

describe.skipIf(!root)('reconcile: orphan hypervisors', () => {
  it('kills a driver-built QEMU no VM owns, and leaves alone other processes naming the run dir', async () => {
    const stateDir = path.join(dir, 'state');
    const runDir = path.join(dir, 'run');
    const vmRunRoot = path.join(runDir, 'vms');
    fs.mkdirSync(vmRunRoot, { recursive: true });
    made = testVmService({ stateDir, runDir, bridge: BRIDGE, prefix: PREFIX, cidr: CIDR });
    const { service } = made;
    const standIn = path.join(binDir, QEMU_BINARY);
    const nobody = ['--reuid=nobody', '--regid=nogroup', '--clear-groups', '--'];

    // The daemon died between starting this VM's QEMU and recording it: the store knows no such VM.
    const orphanArgv = [standIn, ...driverArgv(vmRunRoot, 'vm-00000000000000f1')];
    const orphan = await run(standIn, orphanArgv.slice(1), orphanArgv);

    // Another user's process with an argument under the run dir's vms/.
    const holderArgv = ['sh', '-c', 'read line', 'holder', path.join(vmRunRoot, 'vm-00000000000000f2', 'qmp.sock')];
    const othersProcess = await run('setpriv', [...nobody, ...holderArgv], holderArgv);
    // The same, as root: an argument under vms/ alone does not make a hypervisor.
    const rootsProcess = await run(holderArgv[0]!, holderArgv.slice(1), holderArgv);
    // The exact argv and executable a driver builds, but run as another user.
    const asNobodyArgv = [standIn, ...driverArgv(vmRunRoot, 'vm-00000000000000f3')];
    const asNobody = await run('setpriv', [...nobody, ...asNobodyArgv], asNobodyArgv);
    // The exact argv a driver builds, argv[0] included, but another executable.
    const otherExeArgv = [standIn, ...driverArgv(vmRunRoot, 'vm-00000000000000f4')];
    const otherExe = spawn(path.join(dir, 'waiter'), otherExeArgv.slice(1), {
      argv0: standIn,
      detached: true,
      stdio: 'ignore',
    });
    children.push(otherExe);
    await new Promise<void>((resolve) => otherExe.once('spawn', resolve));
    expect(readCmdline(otherExe.pid!)).toBe(`${otherExeArgv.join('\0')}\0`);

    // A permanent neighbour entry for an address in the subnet that no lease holds (a VM whose destroy the
    // daemon did not finish), and one outside the subnet that is not the daemon's.
    // (With the MAC the daemon gives its bridge: a change of MAC flushes the bridge's neighbour entries.)
    execFileSync('ip', ['link', 'add', BRIDGE, 'address', bridgeMac(BRIDGE), 'type', 'bridge']);
    for (const [address, mac] of [
      ['10.213.141.77', '52:54:00:00:00:77'],
      ['192.0.2.9', '52:54:00:00:00:09'],
    ] as const) {
      execFileSync('ip', ['neigh', 'replace', address, 'lladdr', mac, 'dev', BRIDGE, 'nud', 'permanent']);
    }

    const report = await service.reconcile();

    expect(report.orphansRemoved).toContain('neighbour:10.213.141.77');
    expect(await permanentNeighbours(BRIDGE)).toEqual(['192.0.2.9']);
    expect(report.orphansRemoved).toContain(`process:${orphan.pid}`);
    expect((await childExited(orphan)).signal).toBe('SIGKILL');
    for (const survivor of [othersProcess, rootsProcess, asNobody, otherExe]) {
      expect(pidAlive(survivor.pid!), `pid ${survivor.pid} survives`).toBe(true);
      expect(report.orphansRemoved).not.toContain(`process:${survivor.pid}`);
    }
  });

  it('claims a directly launched Firecracker only in the shape prepareDirect builds, as the daemon user', () => {
    const vmRunRoot = path.join(dir, 'run', 'vms');
    const binary = path.join(dir, 'waiter');
    const driver = new FirecrackerDriver({ binary, jailer: null });
    const id = 'vm-00000000000000f5';
    const argv = [binary, '--api-sock', path.join(vmRunRoot, id, 'firecracker.sock'), '--id', id];
    const view = { pid: 1, argv, uids: [0, 0, 0, 0], exe: binary };
    expect(driver.launchedVm(view, vmRunRoot)).toBe(id);
    expect(driver.launchedVm({ ...view, uids: [65534, 65534, 65534, 65534] }, vmRunRoot)).toBeNull();
    expect(driver.launchedVm({ ...view, exe: '/bin/sh' }, vmRunRoot)).toBeNull();
    expect(driver.launchedVm({ ...view, argv: [...argv, '--extra'] }, vmRunRoot)).toBeNull();
    expect(
      driver.launchedVm({ ...view, argv: argv.map((a) => (a === id ? 'vm-00000000000000f6' : a)) }, vmRunRoot),
    ).toBeNull();
    expect(new QemuDriver({ qemuAccel: 'tcg' }).launchedVm(view, vmRunRoot)).toBeNull();
  });
});
