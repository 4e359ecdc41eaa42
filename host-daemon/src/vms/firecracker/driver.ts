import fs from 'node:fs';
import path from 'node:path';
import { execFile, spawn } from 'node:child_process';
import { promisify } from 'node:util';
import { FiredeckError, isFiredeckError } from '../../../../src/shared/errors';
import type { DriverAvailability } from '../../../../src/shared/protocol/daemon';
import { findExecutable, kvmAccessible } from '../availability';
import type { VmDriver, VmHandle, VmInspection, VmLaunchSpec } from '../driver';
import { FirecrackerApi, type TokenBucket } from './api';
import {
  cleanupJail,
  jailerArgs,
  jailLayout,
  jailLayoutOfSocket,
  stageJail,
  type JailerOptions,
  type JailFile,
  type JailLayout,
} from './jailer';
import { isSameProcess, pidAlive, readCmdline, waitForPidExit } from '../../system/processes';

const run = promisify(execFile);

export interface FirecrackerDriverOptions {
  /** The firecracker binary: a name on PATH or an absolute path (default `firecracker`). */
  binary?: string;
  /** Run Firecracker under the jailer; null or absent runs it directly as the daemon's user. */
  jailer?: JailerOptions | null;
  /** Per API request (default 5 s). */
  apiTimeoutMs?: number;
  /** From spawn until the API socket answers (default 10 s; Firecracker itself needs ~12 ms). */
  startTimeoutMs?: number;
  /** Attach a virtio-vsock device (guest CID 3) backed by `<runDir>/vsock.sock`. */
  vsock?: boolean;
  /** Rate limit for the guest's serial output, which otherwise goes to the file unthrottled. */
  serialRateLimiter?: TokenBucket;
}

/** File names inside a VM's runDir. */
export const RUN_FILES = {
  apiSocket: 'firecracker.sock',
  serial: 'serial.log',
  processLog: 'firecracker.log',
  vsock: 'vsock.sock',
} as const;

// Firecracker's own defaults for a guest: reboot=k makes a guest reboot (and Ctrl-Alt-Del) end the process;
// the i8042 flags skip probes of a controller Firecracker emulates only in part. Appended unless the daemon's
// command line already sets the key. The daemon's console=ttyS0 stays: no 8250.nr_uarts=0 here.
const FIRECRACKER_BOOT_ARGS = ['reboot=k', 'pci=off', 'i8042.noaux', 'i8042.nomux', 'i8042.nopnp', 'i8042.dumbkbd'];

/** Longest path a unix socket address holds (sun_path is 108 bytes with its NUL). */
const MAX_SOCKET_PATH = 107;

/**
 * The Firecracker hypervisor: `firecracker --api-sock <runDir>/firecracker.sock` (optionally under the
 * jailer), configured through its REST API. Firecracker boots an uncompressed `vmlinux` (ELF) only, with
 * virtio-mmio, virtio-blk and virtio-net built in; `spec.kernelPath` must name such a kernel (the daemon's
 * config supplies it; a distribution's bzImage does not boot). Disks must be raw.
 */
export class FirecrackerDriver implements VmDriver {
  readonly name = 'firecracker' as const;
  private readonly binary: string;
  private readonly jailer: JailerOptions | null;
  private readonly apiTimeoutMs: number;
  private readonly startTimeoutMs: number;
  private readonly vsock: boolean;
  private readonly serialRateLimiter: TokenBucket | undefined;
  /** Exit events of the processes this daemon spawned; adopted ones have none. */
  private readonly exits = new Map<number, Promise<void>>();

  constructor(options: FirecrackerDriverOptions = {}) {
    this.binary = options.binary ?? 'firecracker';
    this.jailer = options.jailer ?? null;
    this.apiTimeoutMs = options.apiTimeoutMs ?? 5000;
    this.startTimeoutMs = options.startTimeoutMs ?? 10_000;
    this.vsock = options.vsock ?? false;
    this.serialRateLimiter = options.serialRateLimiter;
  }

  async availability(): Promise<DriverAvailability> {
    const binary = findExecutable(this.binary);
    const unavailable = (reason: string, version: string | null = null): DriverAvailability => ({
      name: 'firecracker',
      available: false,
      binary,
      version,
      accel: null,
      reason,
    });
    if (binary === null) {
      return unavailable(
        `${this.binary} not found (install a Firecracker release binary, e.g. /usr/local/bin/firecracker)`,
      );
    }
    const version = await versionOf(binary);
    if (this.jailer !== null && findExecutable(this.jailer.binary) === null) {
      return unavailable(
        `jailer binary ${this.jailer.binary} not found (it ships in the Firecracker release)`,
        version,
      );
    }
    if (!kvmAccessible()) return unavailable('Firecracker needs /dev/kvm, which this host does not offer', version);
    return { name: 'firecracker', available: true, binary, version, accel: 'kvm', reason: null };
  }

  async start(spec: VmLaunchSpec): Promise<VmHandle> {
    const binary = this.resolveBinary(this.binary, 'Firecracker binary');
    const jailerBinary = this.jailer === null ? null : this.resolveBinary(this.jailer.binary, 'jailer binary');
    checkSpec(spec);
    await checkKernel(spec.kernelPath);

    await fs.promises.mkdir(spec.runDir, { recursive: true, mode: 0o750 });
    const serialOnHost = path.join(spec.runDir, RUN_FILES.serial);
    const processLog = path.join(spec.runDir, RUN_FILES.processLog);
    const jail = this.jailer === null ? null : jailLayout(this.jailer, binary, spec.id);
    const apiSocket = jail?.apiSocketOnHost ?? path.join(spec.runDir, RUN_FILES.apiSocket);
    const vsockOnHost =
      jail === null ? path.join(spec.runDir, RUN_FILES.vsock) : path.join(jail.chrootDir, 'vsock.sock');
    for (const socket of [apiSocket, vsockOnHost]) {
      if (Buffer.byteLength(socket) > MAX_SOCKET_PATH) {
        throw new FiredeckError('invalid_params', `socket path ${socket} is longer than ${MAX_SOCKET_PATH} bytes`, {
          hint: 'use a shorter run directory or chroot base',
        });
      }
      // Firecracker binds without unlinking; a file left by an earlier run would make it exit.
      await fs.promises.rm(socket, { force: true });
    }
    // Opened here, not by Firecracker, so that the file exists (and is ours) before the guest writes to it.
    await fs.promises.appendFile(serialOnHost, '', { mode: 0o640 });

    let paths: GuestPaths;
    let consolePath = serialOnHost;
    if (jail !== null && this.jailer !== null) {
      const jailer = this.jailer;
      const staged = await this.stage(jail, jailer, spec, serialOnHost).catch(async (err: unknown) => {
        await cleanupJail(jail, jailer);
        throw err;
      });
      paths = staged.paths;
      consolePath = staged.consolePath;
    } else {
      paths = {
        kernel: spec.kernelPath,
        initrd: spec.initrdPath,
        rootfs: spec.rootfsPath,
        configDrive: spec.configDrivePath,
        serial: serialOnHost,
        vsock: vsockOnHost,
      };
    }

    const logFd = fs.openSync(processLog, 'a', 0o640);
    let child;
    try {
      const args =
        jailerBinary !== null && this.jailer !== null
          ? jailerArgs(this.jailer, binary, spec.id)
          : ['--api-sock', apiSocket, '--id', spec.id];
      child = spawn(jailerBinary ?? binary, args, {
        // Its own session, so that signals to the daemon's group do not reach the VM; the jailer's
        // --daemonize calls setsid() itself, which fails in a process that already leads a group.
        detached: this.jailer?.daemonize !== true,
        stdio: ['ignore', logFd, logFd],
      });
    } finally {
      fs.closeSync(logFd);
    }
    const spawned = new Promise<void>((resolve, reject) => {
      child.once('spawn', resolve);
      child.once('error', reject);
    });
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
      child.once('exit', (code, signal) => resolve({ code, signal }));
    });
    child.unref();

    let pid: number | null = null;
    try {
      await spawned.catch((err: NodeJS.ErrnoException) => {
        throw new FiredeckError('unavailable', `cannot run ${jailerBinary ?? binary}: ${err.code ?? err.message}`, {
          cause: err,
        });
      });
      const api = new FirecrackerApi(apiSocket, { timeoutMs: this.apiTimeoutMs });
      // Under --new-pid-ns the jailer exits once its child runs: that exit is no failure.
      const diesEarly = this.jailer?.newPidNs === true ? null : exited;
      await waitForApiSocket(api, this.startTimeoutMs, diesEarly, processLog);
      pid = jail !== null && this.jailer?.newPidNs === true ? await readPidFile(jail.pidFile) : child.pid!;
      if (pid === child.pid) {
        const own = pid;
        this.exits.set(
          own,
          exited.then(() => {
            this.exits.delete(own);
          }),
        );
      }

      await this.configure(api, spec, paths);
      await api.action('InstanceStart');

      const cmdline = readCmdline(pid);
      if (cmdline === null) {
        throw new FiredeckError('internal', `firecracker (pid ${pid}) ended right after InstanceStart`, {
          details: { log: await tail(processLog) },
        });
      }
      return { pid, cmdline, controlSocket: apiSocket, console: { kind: 'file', path: consolePath } };
    } catch (err) {
      const victim = pid ?? child.pid;
      if (victim !== undefined && pidAlive(victim)) process.kill(victim, 'SIGKILL');
      if (victim !== undefined && victim === child.pid) await exited;
      else if (victim !== undefined) await waitForPidExit(victim, 5000);
      if (pid !== null) this.exits.delete(pid);
      await this.cleanup(apiSocket, vsockOnHost);
      throw err;
    }
  }

  async stop(handle: VmHandle, timeoutMs: number): Promise<'graceful' | 'killed'> {
    if (!isSameProcess(handle.pid, handle.cmdline)) {
      await this.cleanupHandle(handle);
      return 'graceful';
    }
    const api = new FirecrackerApi(handle.controlSocket, { timeoutMs: this.apiTimeoutMs });
    let asked = true;
    try {
      await api.action('SendCtrlAltDel');
    } catch (err) {
      // No API, no way to ask the guest: go straight to the kill.
      if (!isFiredeckError(err)) throw err;
      asked = false;
    }
    if (asked && (await this.waitForEnd(handle.pid, timeoutMs))) {
      await this.cleanupHandle(handle);
      return 'graceful';
    }
    await this.kill(handle);
    return 'killed';
  }

  async kill(handle: VmHandle): Promise<void> {
    // Only the process the handle names: after a reboot or a crash the pid may belong to someone else.
    if (isSameProcess(handle.pid, handle.cmdline)) {
      try {
        process.kill(handle.pid, 'SIGKILL');
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
      }
      if (!(await this.waitForEnd(handle.pid, 10_000))) {
        throw new FiredeckError('timeout', `firecracker (pid ${handle.pid}) survived SIGKILL for 10 s`);
      }
    }
    await this.cleanupHandle(handle);
  }

  async inspect(handle: VmHandle): Promise<VmInspection> {
    if (!isSameProcess(handle.pid, handle.cmdline)) return { alive: false, status: null };
    try {
      const info = await new FirecrackerApi(handle.controlSocket, { timeoutMs: this.apiTimeoutMs }).describeInstance();
      return { alive: true, status: info.state };
    } catch (err) {
      if (!isFiredeckError(err)) throw err;
      return { alive: true, status: null };
    }
  }

  async adopt(handle: VmHandle): Promise<boolean> {
    if (!isSameProcess(handle.pid, handle.cmdline)) return false;
    try {
      const info = await new FirecrackerApi(handle.controlSocket, { timeoutMs: this.apiTimeoutMs }).describeInstance();
      // A process that never got InstanceStart (the daemon died mid-start) is no VM to keep.
      return info.state !== 'Not started';
    } catch (err) {
      if (!isFiredeckError(err)) throw err;
      return false;
    }
  }

  private async configure(api: FirecrackerApi, spec: VmLaunchSpec, paths: GuestPaths): Promise<void> {
    const bootArgs = withFirecrackerBootArgs(spec.kernelArgs);
    await api.putBootSource(
      paths.initrd === null
        ? { kernel_image_path: paths.kernel, boot_args: bootArgs }
        : { kernel_image_path: paths.kernel, boot_args: bootArgs, initrd_path: paths.initrd },
    );
    await api.putDrive({ drive_id: 'rootfs', path_on_host: paths.rootfs, is_root_device: true, is_read_only: false });
    if (paths.configDrive !== null) {
      await api.putDrive({
        drive_id: 'config',
        path_on_host: paths.configDrive,
        is_root_device: false,
        is_read_only: true,
      });
    }
    await api.putMachineConfig({ vcpu_count: spec.vcpus, mem_size_mib: spec.memoryMib });
    if (spec.tap !== null) {
      await api.putNetworkInterface(
        spec.mac === null
          ? { iface_id: 'eth0', host_dev_name: spec.tap }
          : { iface_id: 'eth0', host_dev_name: spec.tap, guest_mac: spec.mac },
      );
    }
    await api.putSerial(
      this.serialRateLimiter === undefined
        ? { serial_out_path: paths.serial }
        : { serial_out_path: paths.serial, rate_limiter: this.serialRateLimiter },
    );
    if (this.vsock) await api.putVsock({ guest_cid: 3, uds_path: paths.vsock });
  }

  private async stage(
    jail: JailLayout,
    options: JailerOptions,
    spec: VmLaunchSpec,
    serialOnHost: string,
  ): Promise<{ paths: GuestPaths; consolePath: string }> {
    const files: JailFile[] = [
      { name: 'vmlinux', hostPath: spec.kernelPath, writable: false, linkOnly: false },
      { name: 'rootfs.img', hostPath: spec.rootfsPath, writable: true, linkOnly: true },
    ];
    if (spec.initrdPath !== null)
      files.push({ name: 'initrd', hostPath: spec.initrdPath, writable: false, linkOnly: false });
    if (spec.configDrivePath !== null) {
      // Private to root (it holds secrets) but the jailed uid must read it; cleanup gives it back.
      files.push({ name: 'config.img', hostPath: spec.configDrivePath, writable: true, linkOnly: false });
    }
    let consolePath = serialOnHost;
    try {
      await stageJail(jail, options, [
        ...files,
        { name: 'serial.log', hostPath: serialOnHost, writable: true, linkOnly: true },
      ]);
    } catch (err) {
      if (!isFiredeckError(err, 'invalid_state')) throw err;
      // The serial log cannot be shared across filesystems: the console then lives in the chroot.
      consolePath = path.join(jail.chrootDir, 'serial.log');
      await stageJail(jail, options, files);
      await fs.promises.writeFile(consolePath, '', { mode: 0o640 });
      await fs.promises.chown(consolePath, options.uid, options.gid);
    }
    return {
      consolePath,
      paths: {
        kernel: '/vmlinux',
        initrd: spec.initrdPath === null ? null : '/initrd',
        rootfs: '/rootfs.img',
        configDrive: spec.configDrivePath === null ? null : '/config.img',
        serial: '/serial.log',
        vsock: '/vsock.sock',
      },
    };
  }

  private resolveBinary(name: string, what: string): string {
    const found = findExecutable(name);
    if (found === null) {
      throw new FiredeckError('unavailable', `${what} "${name}" not found or not executable`, {
        hint: 'install the Firecracker release binaries (firecracker, jailer) or set the path in the daemon config',
        details: { binary: name },
      });
    }
    return found;
  }

  private async waitForEnd(pid: number, timeoutMs: number): Promise<boolean> {
    const exit = this.exits.get(pid);
    if (exit === undefined) return waitForPidExit(pid, timeoutMs);
    let timer: NodeJS.Timeout | undefined;
    const ended = await Promise.race([
      exit.then(() => true),
      new Promise<boolean>((resolve) => {
        timer = setTimeout(() => resolve(false), timeoutMs);
      }),
    ]);
    clearTimeout(timer);
    return ended;
  }

  private async cleanupHandle(handle: VmHandle): Promise<void> {
    const jail = this.jailer === null ? null : jailLayoutOfSocket(this.jailer, handle.controlSocket);
    const vsock =
      jail === null
        ? path.join(path.dirname(handle.controlSocket), RUN_FILES.vsock)
        : path.join(jail.chrootDir, 'vsock.sock');
    await this.cleanup(handle.controlSocket, vsock);
  }

  /** Removes what a dead Firecracker leaves: its sockets and, when jailed, the chroot. The console log stays. */
  private async cleanup(apiSocket: string, vsock: string): Promise<void> {
    await fs.promises.rm(apiSocket, { force: true });
    await fs.promises.rm(vsock, { force: true });
    const jail = this.jailer === null ? null : jailLayoutOfSocket(this.jailer, apiSocket);
    if (jail !== null && this.jailer !== null) await cleanupJail(jail, this.jailer);
  }
}

interface GuestPaths {
  kernel: string;
  initrd: string | null;
  rootfs: string;
  configDrive: string | null;
  serial: string;
  vsock: string;
}

/** The daemon's kernel command line plus Firecracker's defaults for keys it does not set. */
export function withFirecrackerBootArgs(kernelArgs: string): string {
  const tokens = kernelArgs.split(/\s+/).filter((t) => t !== '');
  const keys = new Set(tokens.map((t) => t.split('=')[0]));
  for (const extra of FIRECRACKER_BOOT_ARGS) {
    if (!keys.has(extra.split('=')[0])) tokens.push(extra);
  }
  return tokens.join(' ');
}

function checkSpec(spec: VmLaunchSpec): void {
  // Firecracker's --id (and the jailer's) allows letters, digits and hyphens, at most 64.
  if (!/^[A-Za-z0-9-]{1,64}$/.test(spec.id)) {
    throw new FiredeckError(
      'invalid_params',
      `VM id ${JSON.stringify(spec.id)} is not a valid Firecracker instance id`,
    );
  }
  if (spec.rootfsFormat !== 'raw') {
    throw new FiredeckError('invalid_params', `Firecracker boots raw disks only, not ${spec.rootfsFormat}`, {
      hint: 'use the qemu driver for qcow2 overlays',
    });
  }
}

/** Firecracker loads an ELF vmlinux; a bzImage fails only at InstanceStart, so say it before spawning. */
async function checkKernel(kernelPath: string): Promise<void> {
  let head: Buffer;
  try {
    const file = await fs.promises.open(kernelPath, 'r');
    try {
      head = Buffer.alloc(4);
      await file.read(head, 0, 4, 0);
    } finally {
      await file.close();
    }
  } catch (err) {
    throw new FiredeckError('invalid_params', `kernel ${kernelPath} cannot be read: ${(err as Error).message}`, {
      cause: err,
    });
  }
  if (!head.equals(Buffer.from([0x7f, 0x45, 0x4c, 0x46]))) {
    throw new FiredeckError('invalid_params', `kernel ${kernelPath} is not an uncompressed vmlinux (ELF)`, {
      hint: 'Firecracker cannot boot a compressed bzImage such as a distribution kernel; configure a vmlinux built with virtio-mmio, virtio-blk and virtio-net',
    });
  }
}

/**
 * Resolves once the API answers GET /. Wakes on changes in the socket's directory (the socket file appears
 * at bind); between bind and listen no event exists, so a refused connect retries after a short backoff.
 */
export async function waitForApiSocket(
  api: FirecrackerApi,
  timeoutMs: number,
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }> | null = null,
  processLog: string | null = null,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let wake: () => void = () => undefined;
  const watcher = fs.watch(path.dirname(api.socketPath), () => wake());
  let ended: { code: number | null; signal: NodeJS.Signals | null } | null = null;
  void exited?.then((how) => {
    ended = how;
    wake();
  });
  let backoff = 5;
  try {
    for (;;) {
      try {
        await api.describeInstance();
        return;
      } catch (err) {
        if (!isFiredeckError(err, 'unavailable')) throw err;
      }
      const exit = ended as { code: number | null; signal: NodeJS.Signals | null } | null;
      if (exit !== null) {
        throw new FiredeckError(
          'unavailable',
          `firecracker exited (${exit.signal ?? `code ${exit.code}`}) before its API socket answered`,
          { details: { log: await tail(processLog) } },
        );
      }
      const left = deadline - Date.now();
      if (left <= 0) {
        throw new FiredeckError(
          'timeout',
          `firecracker's API socket ${api.socketPath} did not answer within ${timeoutMs} ms`,
          {
            details: { log: await tail(processLog) },
          },
        );
      }
      const socketExists = fs.existsSync(api.socketPath);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, socketExists ? Math.min(backoff, left) : left);
        wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      if (socketExists) backoff = Math.min(backoff * 2, 100);
    }
  } finally {
    watcher.close();
  }
}

async function readPidFile(pidFile: string): Promise<number> {
  const text = await fs.promises.readFile(pidFile, 'utf8');
  const pid = Number.parseInt(text.trim(), 10);
  if (!Number.isInteger(pid) || pid <= 0)
    throw new FiredeckError('internal', `jailer pid file ${pidFile} holds no pid`);
  return pid;
}

async function tail(file: string | null, lines = 20): Promise<string[]> {
  if (file === null) return [];
  try {
    return (await fs.promises.readFile(file, 'utf8'))
      .split('\n')
      .filter((l) => l !== '')
      .slice(-lines);
  } catch {
    return [];
  }
}

async function versionOf(binary: string): Promise<string | null> {
  try {
    const { stdout } = await run(binary, ['--version'], { timeout: 5000 });
    return stdout.split('\n')[0]?.trim() || null;
  } catch {
    return null;
  }
}
