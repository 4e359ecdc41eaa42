import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { FiredeckError } from '../../../../src/shared/errors';
import type { DriverAvailability } from '../../../../src/shared/protocol/daemon';
import type { DaemonConfig } from '../../config';
import { pidAlive, readCmdline, runsExecutable, waitForPidExit, type ProcessView } from '../../system/processes';
import { findExecutable, probeQemu } from '../availability';
import type { VmDriver, VmHandle, VmInspection, VmLaunchSpec } from '../driver';
import { QmpSession, qmpCommand } from './qmp';

const run = promisify(execFile);

export const QEMU_BINARY = 'qemu-system-x86_64';
const POWER_BUTTON_REPEAT_MS = 3000;

export interface QemuPaths {
  qmpSocket: string;
  serialSocket: string;
  pidFile: string;
}

export function qemuPaths(runDir: string): QemuPaths {
  return {
    qmpSocket: path.join(runDir, 'qmp.sock'),
    serialSocket: path.join(runDir, 'serial.sock'),
    pidFile: path.join(runDir, 'qemu.pid'),
  };
}

/** QEMU's argv for one VM: `-M pc`, serial and QMP on unix sockets, daemonized so it outlives firedeckd. */
export function qemuArgs(spec: VmLaunchSpec, accel: 'kvm' | 'tcg'): string[] {
  const p = qemuPaths(spec.runDir);
  const args = [
    '-name',
    `firedeck-${spec.id},process=firedeck-${spec.id}`,
    '-M',
    'pc',
    '-accel',
    accel,
    // TCG's default qemu64 model lacks instructions the CLIs' Node builds use (they die with SIGILL).
    '-cpu',
    accel === 'kvm' ? 'host' : 'max',
    '-m',
    String(spec.memoryMib),
    '-smp',
    String(spec.vcpus),
    '-nodefaults',
    '-no-user-config',
    '-display',
    'none',
    '-vga',
    'none',
    '-no-reboot',
    '-kernel',
    spec.kernelPath,
    ...(spec.initrdPath ? ['-initrd', spec.initrdPath] : []),
    '-append',
    spec.kernelArgs,
    '-drive',
    `file=${escapeOpt(spec.rootfsPath)},format=${spec.rootfsFormat},if=virtio,cache=writeback,discard=unmap`,
  ];
  if (spec.configDrivePath) {
    args.push('-drive', `file=${escapeOpt(spec.configDrivePath)},format=raw,if=virtio,readonly=on`);
  }
  if (spec.tap) {
    args.push(
      '-netdev',
      `tap,id=net0,ifname=${spec.tap},script=no,downscript=no`,
      '-device',
      `virtio-net-pci,netdev=net0${spec.mac ? `,mac=${spec.mac}` : ''}`,
    );
  }
  args.push(
    '-chardev',
    `socket,id=serial0,path=${escapeOpt(p.serialSocket)},server=on,wait=off`,
    '-serial',
    'chardev:serial0',
    '-qmp',
    `unix:${escapeOpt(p.qmpSocket)},server=on,wait=off`,
    '-pidfile',
    p.pidFile,
    '-daemonize',
  );
  return args;
}

/** QEMU option values escape a comma by doubling it. */
function escapeOpt(value: string): string {
  return value.replace(/,/g, ',,');
}

/** The QEMU driver: TCG everywhere, KVM where usable; lifecycle over QMP. */
export class QemuDriver implements VmDriver {
  readonly name = 'qemu' as const;

  constructor(private readonly config: Pick<DaemonConfig, 'qemuAccel'>) {}

  availability(): Promise<DriverAvailability> {
    return probeQemu(this.config);
  }

  async start(spec: VmLaunchSpec): Promise<VmHandle> {
    const avail = await this.availability();
    if (!avail.available || avail.binary === null || avail.accel === null) {
      throw new FiredeckError('unavailable', `QEMU is not available: ${avail.reason ?? 'unknown reason'}`);
    }
    const p = qemuPaths(spec.runDir);
    fs.mkdirSync(spec.runDir, { recursive: true, mode: 0o750 });
    for (const f of [p.qmpSocket, p.serialSocket, p.pidFile]) fs.rmSync(f, { force: true });
    const args = qemuArgs(spec, avail.accel);
    try {
      // With -daemonize the launcher exits once the VM's sockets exist; the VM lives on in its own session.
      await run(avail.binary, args, { timeout: 60_000 });
    } catch (err) {
      const stderr = (err as { stderr?: string }).stderr?.trim();
      throw new FiredeckError('internal', `QEMU failed to start VM ${spec.id}: ${stderr || String(err)}`, {
        details: { args },
      });
    }
    const pid = Number(fs.readFileSync(p.pidFile, 'utf8').trim());
    const cmdline = readCmdline(pid);
    if (!Number.isInteger(pid) || pid <= 0 || cmdline === null) {
      throw new FiredeckError('internal', `QEMU for VM ${spec.id} exited right after starting`);
    }
    const handle: VmHandle = {
      pid,
      cmdline,
      controlSocket: p.qmpSocket,
      console: { kind: 'unix-socket', path: p.serialSocket },
    };
    try {
      await qmpCommand(p.qmpSocket, 'query-status');
    } catch (err) {
      await this.kill(handle);
      throw FiredeckError.from(err);
    }
    return handle;
  }

  async stop(handle: VmHandle, timeoutMs: number): Promise<'graceful' | 'killed'> {
    if (!this.owns(handle)) return 'graceful';
    let session: QmpSession | null = null;
    try {
      const s = await QmpSession.open(handle.controlSocket);
      session = s;
      await s.execute('system_powerdown');
      // A guest still booting has no ACPI handler yet and drops the press: press again until the budget ends.
      const again = setInterval(
        () => void s.execute('system_powerdown').catch(() => undefined),
        POWER_BUTTON_REPEAT_MS,
      );
      let deadline: NodeJS.Timeout | undefined;
      // QEMU closes the monitor when it exits (-no-reboot turns the guest's power-off into an exit).
      const timedOut = await Promise.race([
        s.closed.then(() => false),
        new Promise<boolean>((r) => (deadline = setTimeout(() => r(true), timeoutMs))),
      ]).finally(() => {
        clearInterval(again);
        clearTimeout(deadline);
      });
      if (!timedOut && (await waitForPidExit(handle.pid, 5000))) return 'graceful';
    } catch {
      // Monitor gone or wedged: fall through to the kill.
    } finally {
      session?.close();
    }
    await this.kill(handle);
    return 'killed';
  }

  async kill(handle: VmHandle): Promise<void> {
    if (!this.owns(handle)) return;
    try {
      await qmpCommand(handle.controlSocket, 'quit', 2000);
    } catch {
      // fall through to SIGKILL
    }
    if (await waitForPidExit(handle.pid, 3000)) return;
    try {
      process.kill(handle.pid, 'SIGKILL');
    } catch {
      return;
    }
    if (!(await waitForPidExit(handle.pid, 10_000))) {
      throw new FiredeckError('internal', `QEMU process ${handle.pid} survived SIGKILL`);
    }
  }

  async inspect(handle: VmHandle): Promise<VmInspection> {
    if (!this.owns(handle)) return { alive: false, status: null };
    try {
      const ret = (await qmpCommand(handle.controlSocket, 'query-status')) as { status?: unknown } | undefined;
      return { alive: true, status: typeof ret?.status === 'string' ? ret.status : null };
    } catch {
      return { alive: pidAlive(handle.pid), status: null };
    }
  }

  async adopt(handle: VmHandle): Promise<boolean> {
    if (!this.owns(handle)) return false;
    try {
      await qmpCommand(handle.controlSocket, 'query-status');
      return true;
    } catch {
      return false;
    }
  }

  /**
   * A QEMU of ours: the `qemu-system-x86_64` on PATH that start() runs (argv[0] and the executable), as the
   * daemon's own user (the daemon starts QEMU as itself), in qemuArgs' shape: named `firedeck-<id>`, its pid
   * file, QMP and serial sockets in `<vmRunRoot>/<id>`, daemonized.
   */
  launchedVm(proc: ProcessView, vmRunRoot: string): string | null {
    const { argv } = proc;
    const uid = process.getuid?.() ?? 0;
    if (proc.uids.length === 0 || proc.uids.some((u) => u !== uid)) return null;
    const binary = findExecutable(QEMU_BINARY);
    if (binary === null || argv[0] !== binary || !runsExecutable(proc.exe, binary)) return null;
    if (argv[1] !== '-name' || argv[argv.length - 1] !== '-daemonize') return null;
    const named = /^firedeck-([A-Za-z0-9-]{1,64}),process=firedeck-\1$/.exec(argv[2] ?? '');
    if (named === null) return null;
    const id = named[1]!;
    const p = qemuPaths(path.join(vmRunRoot, id));
    const valueOf = (flag: string): string | undefined => {
      const at = argv.indexOf(flag);
      return at < 0 ? undefined : argv[at + 1];
    };
    if (valueOf('-pidfile') !== p.pidFile) return null;
    if (valueOf('-qmp') !== `unix:${escapeOpt(p.qmpSocket)},server=on,wait=off`) return null;
    if (valueOf('-chardev') !== `socket,id=serial0,path=${escapeOpt(p.serialSocket)},server=on,wait=off`) return null;
    return id;
  }

  /** The pid still names the very process we started (not a recycled pid). */
  private owns(handle: VmHandle): boolean {
    return pidAlive(handle.pid) && readCmdline(handle.pid) === handle.cmdline;
  }
}
