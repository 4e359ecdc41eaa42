import { execFile, spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { FiredeckError } from '../../../../src/shared/errors';
import type { DriverAvailability } from '../../../../src/shared/protocol/daemon';
import type { DaemonConfig } from '../../config';
import {
  childExited,
  pidAlive,
  readCmdline,
  runsExecutable,
  waitForPidExit,
  type ProcessView,
} from '../../system/processes';
import { tapOpener } from '../../system/tap';
import {
  QEMU_SANDBOX,
  QEMU_UID_BASE,
  QEMU_UID_COUNT,
  VM_QEMU_UIDS,
  freeUid,
  inUidRange,
  uidsInUse,
} from '../../system/uidPool';
import { groupId } from '../../system/users';
import { findExecutable, probeQemu } from '../availability';
import type { VmDriver, VmHandle, VmInspection, VmLaunchSpec } from '../driver';
import { QmpSession, qmpCommand } from './qmp';

const run = promisify(execFile);

export const QEMU_BINARY = 'qemu-system-x86_64';
const POWER_BUTTON_REPEAT_MS = 3000;

export { QEMU_SANDBOX, QEMU_UID_BASE, QEMU_UID_COUNT };

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

/** The descriptor numbers (in QEMU) of what the daemon opens for a sandboxed QEMU; see sandboxedQemuArgs. */
export interface QemuFds {
  rootfsRw: number;
  rootfsRo: number;
  kernel: number;
  initrd: number | null;
  configDrive: number | null;
  tap: number | null;
  /** A qcow2 overlay's backing (golden) image, read-only. */
  backing: number | null;
}

/** Child descriptor numbers from 3 on, in the order the driver opens them: rootfs rw, rootfs ro, kernel, …. */
export function qemuFds(spec: VmLaunchSpec): QemuFds {
  let next = 3;
  const take = (): number => next++;
  return {
    rootfsRw: take(),
    rootfsRo: take(),
    kernel: take(),
    initrd: spec.initrdPath ? take() : null,
    configDrive: spec.configDrivePath ? take() : null,
    tap: spec.tap ? take() : null,
    backing: spec.rootfsFormat === 'qcow2' ? take() : null,
  };
}

/**
 * QEMU's argv for one VM under `-sandbox` as an unprivileged uid: the argv of qemuArgs, but QEMU opens none of
 * the VM's files by path (the state dir is root's alone): the disks come as fd sets (an O_RDWR and an O_RDONLY
 * descriptor of the rootfs, as QEMU asks for both), the kernel and initrd as /proc/self/fd links, the TAP as an
 * fd. Not daemonized: the seccomp filter (spawn, elevateprivileges) forbids its fork and setsid; the daemon
 * spawns it in a session of its own instead. It creates its sockets and pid file in its run dir, which it owns.
 */
export function sandboxedQemuArgs(spec: VmLaunchSpec, accel: 'kvm' | 'tcg', fds: QemuFds): string[] {
  const base = qemuArgs(
    {
      ...spec,
      kernelPath: `/proc/self/fd/${fds.kernel}`,
      initrdPath: fds.initrd === null ? null : `/proc/self/fd/${fds.initrd}`,
      rootfsPath: '/dev/fdset/1',
      configDrivePath: fds.configDrive === null ? null : '/dev/fdset/2',
    },
    accel,
  );
  const args = base.slice(0, base.indexOf('-daemonize'));
  const fdsets = [
    '-add-fd',
    `fd=${fds.rootfsRw},set=1,opaque=rootfs-rw`,
    '-add-fd',
    `fd=${fds.rootfsRo},set=1,opaque=rootfs-ro`,
    ...(fds.configDrive === null ? [] : ['-add-fd', `fd=${fds.configDrive},set=2,opaque=config-drive`]),
    ...(fds.backing === null ? [] : ['-add-fd', `fd=${fds.backing},set=3,opaque=backing`]),
  ];
  const drive = args.indexOf('-drive');
  // An overlay names its backing image by path: QEMU is told to open the fd set instead.
  if (fds.backing !== null) args[drive + 1] += ',backing.file.filename=/dev/fdset/3,backing.driver=raw';
  args.splice(drive, 0, ...fdsets);
  if (fds.tap !== null) {
    const netdev = args.indexOf('-netdev');
    args[netdev + 1] = `tap,id=net0,fd=${fds.tap}`;
  }
  args.push('-sandbox', QEMU_SANDBOX);
  return args;
}

/** The backing file a qcow2 image names in its header (offset 8: its offset, u64; 16: its length, u32). */
export function qcow2Backing(file: string): string {
  const fd = fs.openSync(file, 'r');
  try {
    const header = Buffer.alloc(20);
    fs.readSync(fd, header, 0, 20, 0);
    const offset = Number(header.readBigUInt64BE(8));
    const length = header.readUInt32BE(16);
    if (header.readUInt32BE(0) !== 0x514649fb || offset === 0 || length === 0 || length > 1023) {
      throw new FiredeckError('internal', `${file} is no qcow2 overlay with a backing file`);
    }
    const name = Buffer.alloc(length);
    fs.readSync(fd, name, 0, length, offset);
    return path.resolve(path.dirname(file), name.toString('utf8'));
  } finally {
    fs.closeSync(fd);
  }
}

/** Throws unless every directory from `/` to `dir` may be searched by any uid (QEMU's uid must reach its run dir). */
function reachableByAnyone(dir: string): void {
  for (let d = path.resolve(dir); ; d = path.dirname(d)) {
    if ((fs.statSync(d).mode & 0o001) === 0) {
      throw new FiredeckError('invalid_state', `a sandboxed QEMU cannot reach its run dir: ${d} is closed to others`, {
        hint: `chmod o+x ${d} (the run dir holds only sockets; each VM's own is 0700), or set qemu-sandbox = off`,
      });
    }
    if (d === path.dirname(d)) return;
  }
}

/** QEMU option values escape a comma by doubling it. */
function escapeOpt(value: string): string {
  return value.replace(/,/g, ',,');
}

/** The QEMU driver: TCG everywhere, KVM where usable; lifecycle over QMP. */
export class QemuDriver implements VmDriver {
  readonly name = 'qemu' as const;

  /** Uids handed to QEMUs still starting (not yet visible in /proc under that uid). */
  private readonly startingUids = new Set<number>();

  constructor(private readonly config: Pick<DaemonConfig, 'qemuAccel' | 'qemuSandbox'>) {}

  private get sandboxed(): boolean {
    return this.config.qemuSandbox !== 'off';
  }

  async availability(): Promise<DriverAvailability> {
    const avail = await probeQemu(this.config);
    return {
      ...avail,
      confinement: this.sandboxed
        ? `sandboxed: -sandbox ${QEMU_SANDBOX}, as an unprivileged uid of its own per VM (from ${QEMU_UID_BASE}), handed only its own disks, kernel and TAP as open files`
        : 'unconfined: QEMU runs as root without -sandbox (qemu-sandbox = off)',
    };
  }

  async start(spec: VmLaunchSpec): Promise<VmHandle> {
    const avail = await this.availability();
    if (!avail.available || avail.binary === null || avail.accel === null) {
      throw new FiredeckError('unavailable', `QEMU is not available: ${avail.reason ?? 'unknown reason'}`);
    }
    const p = qemuPaths(spec.runDir);
    fs.mkdirSync(spec.runDir, { recursive: true, mode: 0o750 });
    for (const f of [p.qmpSocket, p.serialSocket, p.pidFile]) fs.rmSync(f, { force: true });
    if (this.sandboxed) return this.startSandboxed(spec, avail.binary, avail.accel);
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

  /**
   * Starts QEMU as a fresh uid under `-sandbox`. Measured on QEMU 7.2: `-runas` cannot be combined with
   * `elevateprivileges=deny` (its setuid comes after the filter, which kills it with SIGSYS), nor `-daemonize`
   * with `spawn=deny` or `elevateprivileges=deny` (fork, setsid): so the daemon drops the privileges itself at
   * spawn (setsid, setgroups, setgid, setuid before exec) and opens, as root, everything QEMU needs but its run
   * dir, which the uid owns.
   */
  private async startSandboxed(spec: VmLaunchSpec, binary: string, accel: 'kvm' | 'tcg'): Promise<VmHandle> {
    const p = qemuPaths(spec.runDir);
    const uid = this.allocateUid(spec.id);
    // Under KVM its group is kvm's, for /dev/kvm (0660 root:kvm); that group owns nothing of a VM.
    const gid = accel === 'kvm' ? (groupId('kvm') ?? uid) : uid;
    const fds = qemuFds(spec);
    const opened: number[] = [];
    const copies: string[] = [];
    let log: number | null = null;
    try {
      reachableByAnyone(path.dirname(spec.runDir));
      fs.chownSync(spec.runDir, uid, gid);
      fs.chmodSync(spec.runDir, 0o700);
      // The VM's own disks: root's alone; QEMU gets them open.
      fs.chmodSync(spec.rootfsPath, 0o600);
      opened.push(fs.openSync(spec.rootfsPath, fs.constants.O_RDWR));
      opened.push(fs.openSync(spec.rootfsPath, fs.constants.O_RDONLY));
      opened.push(this.openBootFile(spec.kernelPath, spec.runDir, uid, gid, copies));
      if (spec.initrdPath) opened.push(this.openBootFile(spec.initrdPath, spec.runDir, uid, gid, copies));
      if (spec.configDrivePath) {
        fs.chmodSync(spec.configDrivePath, 0o600);
        opened.push(fs.openSync(spec.configDrivePath, fs.constants.O_RDONLY));
      }
      if (spec.tap) opened.push(tapOpener()(spec.tap));
      if (spec.rootfsFormat === 'qcow2') opened.push(fs.openSync(qcow2Backing(spec.rootfsPath), fs.constants.O_RDONLY));
      log = fs.openSync(path.join(spec.runDir, 'qemu.log'), 'a', 0o600);
      const args = sandboxedQemuArgs(spec, accel, fds);
      const child = spawn(binary, args, {
        detached: true,
        uid,
        gid,
        stdio: ['ignore', log, log, ...opened],
      });
      child.unref();
      const exited = childExited(child);
      await new Promise<void>((resolve, reject) => {
        child.once('spawn', resolve);
        child.once('error', reject);
      });
      const pid = child.pid!;
      const failed = async (why: string): Promise<never> => {
        const said = fs
          .readFileSync(path.join(spec.runDir, 'qemu.log'), 'utf8')
          .trim()
          .split('\n')
          .slice(-5)
          .join('\n');
        throw new FiredeckError('internal', `QEMU failed to start VM ${spec.id}: ${said || why}`, {
          details: { args },
        });
      };
      // QEMU makes its QMP socket during start-up; ready once it answers, failed if QEMU ends first.
      let gone = false;
      void exited.then(() => (gone = true));
      const deadline = Date.now() + 60_000;
      for (;;) {
        if (gone) return await failed('QEMU exited during start-up');
        if (fs.existsSync(p.qmpSocket)) {
          try {
            await qmpCommand(p.qmpSocket, 'query-status');
            break;
          } catch (err) {
            if (gone) return await failed(String(err));
          }
        }
        if (Date.now() > deadline) {
          process.kill(pid, 'SIGKILL');
          return await failed('its QMP socket did not answer within 60 s');
        }
        await Promise.race([exited, new Promise((r) => setTimeout(r, 50))]);
      }
      const cmdline = readCmdline(pid);
      if (cmdline === null) return await failed('QEMU exited right after starting');
      return { pid, cmdline, controlSocket: p.qmpSocket, console: { kind: 'unix-socket', path: p.serialSocket } };
    } finally {
      for (const fd of opened) fs.closeSync(fd);
      if (log !== null) fs.closeSync(log);
      // QEMU has read the kernel and initrd by the time its monitor answers (or it has died).
      for (const copy of copies) fs.rmSync(copy, { force: true });
      this.startingUids.delete(uid);
    }
  }

  /**
   * A kernel or initrd, open, for QEMU to read as /proc/self/fd/N: opening that link checks the file's own mode,
   * so a golden file others may not read (Debian makes initrds 0600) is handed over as a copy in the VM's run dir
   * that its uid owns, removed once QEMU has started.
   */
  private openBootFile(file: string, runDir: string, uid: number, gid: number, copies: string[]): number {
    if ((fs.statSync(file).mode & 0o004) !== 0) return fs.openSync(file, fs.constants.O_RDONLY);
    const copy = path.join(runDir, `boot-${copies.length}-${path.basename(file)}`);
    fs.copyFileSync(file, copy);
    copies.push(copy);
    fs.chownSync(copy, uid, gid);
    fs.chmodSync(copy, 0o400);
    return fs.openSync(copy, fs.constants.O_RDONLY);
  }

  /**
   * A uid of the range that no process on this machine runs as, nor a QEMU still starting: the first free one
   * from a point the VM's id picks (so that a VM tends to keep its uid).
   */
  private allocateUid(id: string): number {
    const inUse = uidsInUse();
    for (const u of this.startingUids) inUse.add(u);
    const uid = freeUid(VM_QEMU_UIDS, id, inUse);
    this.startingUids.add(uid);
    return uid;
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
   * A QEMU of ours: the `qemu-system-x86_64` on PATH that start() runs (argv[0] and the executable), named
   * `firedeck-<id>`, its pid file, QMP and serial sockets in `<vmRunRoot>/<id>`, and either daemonized as the
   * daemon's own user (qemuArgs) or ending in `-sandbox` as one uid of the sandbox range (sandboxedQemuArgs).
   */
  launchedVm(proc: ProcessView, vmRunRoot: string): string | null {
    const { argv } = proc;
    const uid = process.getuid?.() ?? 0;
    const first = proc.uids[0];
    if (first === undefined || proc.uids.some((u) => u !== first)) return null;
    const daemonized = first === uid && argv[argv.length - 1] === '-daemonize';
    const sandboxed =
      inUidRange(VM_QEMU_UIDS, first) && argv[argv.length - 2] === '-sandbox' && argv[argv.length - 1] === QEMU_SANDBOX;
    if (!daemonized && !sandboxed) return null;
    const binary = findExecutable(QEMU_BINARY);
    if (binary === null || argv[0] !== binary || !runsExecutable(proc.exe, binary)) return null;
    if (argv[1] !== '-name') return null;
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
