import fs from 'node:fs';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { FiredeckError, isFiredeckError } from '../../../../src/shared/errors';
import type { DriverAvailability, GracefulStop } from '../../../../src/shared/protocol/daemon';
import { cachedGracefulStopOf, checkFirecrackerKernel } from '../../images/firecrackerKernel';
import {
  isSameProcess,
  pidAlive,
  readCmdline,
  runsExecutable,
  waitForPidExit,
  type ProcessView,
} from '../../system/processes';
import { findExecutable, kvmAccessible } from '../availability';
import type { VmDriver, VmHandle, VmInspection, VmLaunchSpec } from '../driver';
import { FirecrackerApi, type TokenBucket } from './api';
import {
  controllerOf,
  detectCgroupVersion,
  LIMIT_CONTROLLERS,
  vmCgroupDirs,
  vmCgroupLimits,
  type CgroupVersion,
} from './cgroups';
import {
  canonicalExecFile,
  checkJailerOptions,
  cleanupJail,
  DEFAULT_PARENT_CGROUP,
  jailerArgs,
  jailLayout,
  jailLayoutOfSocket,
  makeFifo,
  netnsName,
  stageJail,
  type JailerOptions,
  type JailFile,
  type JailLaunch,
  type JailLayout,
} from './jailer';
import { createJailNetwork, hostPort, netnsPath } from './jailNetwork';
import { readLaunchRecord, writeLaunchRecord } from './launchRecord';
import {
  atLeast,
  probeRelease,
  requireFirecracker,
  requireJailer,
  SERIAL_RATE_LIMITER_SINCE,
  versionText,
  type Release,
} from './version';

export interface FirecrackerDriverOptions {
  /** The firecracker binary: a name on PATH or an absolute path (default `firecracker`). */
  binary?: string;
  /**
   * Run Firecracker under the jailer (the daemon's default, see settings.ts); null runs it directly as the
   * daemon's user, which the daemon does only when told to (FIREDECK_FIRECRACKER_JAILER=off).
   */
  jailer: JailerOptions | null;
  /** Per API request (default 5 s). */
  apiTimeoutMs?: number;
  /** From spawn until the API socket answers (default 10 s; Firecracker itself needs ~12 ms). */
  startTimeoutMs?: number;
  /** Attach a virtio-vsock device (guest CID 3) backed by `vsock.sock` beside the API socket. */
  vsock?: boolean;
  /**
   * Firecracker's own limit on the guest's serial output (bytes beyond it are dropped), set where the release
   * supports it (1.16+); default DEFAULT_SERIAL_RATE_LIMITER, null for none.
   */
  serialRateLimiter?: TokenBucket | null;
  /** The kernel new images record (FIREDECK_FIRECRACKER_KERNEL), whose graceful stop `availability` reports. */
  kernel?: string | null;
  /** The daemon's log. */
  log?: (line: string) => void;
  /** A settings problem found at daemon start (e.g. no jail user): the driver is unavailable, saying so. */
  unavailable?: FiredeckError;
}

/** 64 KiB/s after a 1 MiB burst for the boot: far beyond a console's needs, far below a flood's. */
export const DEFAULT_SERIAL_RATE_LIMITER: TokenBucket = {
  size: 64 * 1024,
  refill_time: 1000,
  one_time_burst: 1024 * 1024,
};

/** File names inside a VM's runDir (and, for the FIFO and vsock, inside its jail). */
export const RUN_FILES = {
  apiSocket: 'firecracker.sock',
  serialFifo: 'serial.fifo',
  processLog: 'firecracker.log',
  vsock: 'vsock.sock',
  record: 'firedeck-launch.json',
} as const;

// Firecracker's own defaults for a guest: reboot=k makes a guest reboot (and Ctrl-Alt-Del) end the process;
// the i8042 flags skip probes of a controller Firecracker emulates only in part. Appended unless the daemon's
// command line already sets the key. The daemon's console=ttyS0 stays: no 8250.nr_uarts=0 here.
const FIRECRACKER_BOOT_ARGS = ['reboot=k', 'pci=off', 'i8042.noaux', 'i8042.nomux', 'i8042.nopnp', 'i8042.dumbkbd'];

/** Longest path a unix socket address holds (sun_path is 108 bytes with its NUL). */
const MAX_SOCKET_PATH = 107;

type Exit = Promise<string>;

/**
 * The Firecracker hypervisor: `firecracker --api-sock …`, under the jailer unless told otherwise, configured
 * through its REST API. Firecracker boots an uncompressed `vmlinux` (ELF) only, with virtio-mmio, virtio-blk and
 * virtio-net built in; `spec.kernelPath` must name such a kernel (the image records one; a distribution's
 * bzImage does not boot). Disks must be raw. The guest's serial output goes through a FIFO into the daemon's
 * capped console log; nothing else of it is stored.
 */
export class FirecrackerDriver implements VmDriver {
  readonly name = 'firecracker' as const;
  private readonly binary: string;
  private readonly jailer: JailerOptions | null;
  private readonly apiTimeoutMs: number;
  private readonly startTimeoutMs: number;
  private readonly vsock: boolean;
  private readonly serialRateLimiter: TokenBucket | null;
  private readonly kernel: string | null;
  private readonly log: (line: string) => void;
  private readonly problem: FiredeckError | null;
  /** Exit events of the processes this daemon spawned and that are Firecracker itself; adopted ones have none. */
  private readonly exits = new Map<number, Promise<void>>();

  constructor(options: FirecrackerDriverOptions) {
    this.binary = options.binary ?? 'firecracker';
    this.jailer = options.jailer;
    this.apiTimeoutMs = options.apiTimeoutMs ?? 5000;
    this.startTimeoutMs = options.startTimeoutMs ?? 10_000;
    this.vsock = options.vsock ?? false;
    this.serialRateLimiter =
      options.serialRateLimiter === undefined ? DEFAULT_SERIAL_RATE_LIMITER : options.serialRateLimiter;
    this.kernel = options.kernel ?? null;
    this.log = options.log ?? (() => undefined);
    this.problem = options.unavailable ?? null;
  }

  async availability(): Promise<DriverAvailability> {
    const binary = findExecutable(this.binary);
    const gracefulStop: GracefulStop =
      this.kernel === null
        ? { support: 'unknown', reason: 'no Firecracker kernel is configured (FIREDECK_FIRECRACKER_KERNEL)' }
        : cachedGracefulStopOf(this.kernel);
    const unavailable = (reason: string, version: string | null = null): DriverAvailability => ({
      name: 'firecracker',
      available: false,
      binary,
      version,
      accel: null,
      reason,
      gracefulStop,
    });
    if (binary === null) {
      return unavailable(
        `${this.binary} not found (install a Firecracker release binary, e.g. /usr/local/bin/firecracker)`,
      );
    }
    if (this.problem !== null) return unavailable(explain(this.problem));
    let release: Release;
    try {
      release = await requireFirecracker(binary);
    } catch (err) {
      return unavailable(explain(err), (await probeRelease(binary, 'Firecracker')).release?.text ?? null);
    }
    const notes: string[] = [];
    if (this.jailer === null) {
      notes.push('the jailer is off (FIREDECK_FIRECRACKER_JAILER=off): Firecracker runs unconfined, as root');
    } else {
      const jailerBinary = findExecutable(this.jailer.binary);
      if (jailerBinary === null) {
        return unavailable(
          `jailer binary ${this.jailer.binary} not found (it ships in the Firecracker release)`,
          release.text,
        );
      }
      try {
        await requireJailer(jailerBinary, release);
        checkJailerOptions(this.jailer);
        this.cgroupVersion();
      } catch (err) {
        return unavailable(explain(err), release.text);
      }
    }
    if (this.serialRateLimiter !== null && !atLeast(release, SERIAL_RATE_LIMITER_SINCE)) {
      notes.push(
        `${release.text} has no serial rate limiter (${versionText(SERIAL_RATE_LIMITER_SINCE)}+): a guest's console output is bounded by the console log only`,
      );
    }
    if (!kvmAccessible())
      return unavailable('Firecracker needs /dev/kvm, which this host does not offer', release.text);
    return {
      name: 'firecracker',
      available: true,
      binary,
      version: release.text,
      accel: 'kvm',
      reason: notes.length === 0 ? null : notes.join('; '),
      gracefulStop,
    };
  }

  async start(spec: VmLaunchSpec): Promise<VmHandle> {
    if (this.problem !== null) throw this.problem;
    const binary = resolveBinary(this.binary, 'Firecracker binary');
    const release = await requireFirecracker(binary);
    let jailerBinary: string | null = null;
    if (this.jailer !== null) {
      jailerBinary = resolveBinary(this.jailer.binary, 'jailer binary');
      await requireJailer(jailerBinary, release);
      checkJailerOptions(this.jailer);
    }
    checkSpec(spec);
    checkKernel(spec.kernelPath);
    const gracefulStop = cachedGracefulStopOf(spec.kernelPath);
    const rateLimiter =
      this.serialRateLimiter !== null && atLeast(release, SERIAL_RATE_LIMITER_SINCE) ? this.serialRateLimiter : null;

    await fs.promises.mkdir(spec.runDir, { recursive: true, mode: 0o750 });
    const processLog = path.join(spec.runDir, RUN_FILES.processLog);
    const launch =
      this.jailer === null
        ? await this.prepareDirect(spec, gracefulStop)
        : await this.prepareJail(spec, this.jailer, binary, gracefulStop);

    const logFd = fs.openSync(processLog, 'a', 0o640);
    let child;
    try {
      child = spawn(jailerBinary ?? binary, launch.args, {
        // Its own session, so that signals to the daemon's group do not reach the VM (the jailer's
        // --daemonize double-forks before its setsid(), which therefore works in a group leader too).
        detached: true,
        stdio: ['ignore', logFd, logFd],
      });
    } finally {
      fs.closeSync(logFd);
    }
    const spawned = new Promise<void>((resolve, reject) => {
      child.once('spawn', resolve);
      child.once('error', reject);
    });
    const childExit: Exit = new Promise((resolve) => {
      child.once('exit', (code, signal) => resolve(signal ?? `code ${code}`));
    });
    child.unref();

    let pid: number | null = null;
    try {
      await spawned.catch((err: NodeJS.ErrnoException) => {
        throw new FiredeckError('unavailable', `cannot run ${jailerBinary ?? binary}: ${err.code ?? err.message}`, {
          cause: err,
        });
      });
      const deadline = Date.now() + this.startTimeoutMs;
      pid =
        launch.jail === null
          ? child.pid!
          : await this.jailedPid(launch.jail, child.pid!, childExit, deadline, processLog);
      if (pid === child.pid) {
        const own = pid;
        this.exits.set(
          own,
          childExit.then(() => {
            this.exits.delete(own);
          }),
        );
      }
      const api = new FirecrackerApi(launch.apiSocket, { timeoutMs: this.apiTimeoutMs });
      // Without --daemonize and --new-pid-ns the jailer execs Firecracker in place: its exit is Firecracker's.
      // Otherwise Firecracker is no child of ours, and only /proc tells whether it still runs.
      await waitForApiSocket(
        api,
        Math.max(deadline - Date.now(), 1),
        pid === child.pid ? childExit : null,
        processLog,
        pid === child.pid ? null : pid,
      );

      await this.configure(api, spec, launch.paths, rateLimiter);
      await api.action('InstanceStart');

      // Read after the API answered: until its exec the process is still the jailer.
      const cmdline = readCmdline(pid);
      if (cmdline === null) {
        throw new FiredeckError('internal', `firecracker (pid ${pid}) ended right after InstanceStart`, {
          details: { log: await tail(processLog) },
        });
      }
      return { pid, cmdline, controlSocket: launch.apiSocket, console: { kind: 'fifo', path: launch.fifo } };
    } catch (err) {
      for (const victim of new Set([pid, child.pid])) {
        if (victim === null || victim === undefined || !pidAlive(victim)) continue;
        try {
          process.kill(victim, 'SIGKILL');
        } catch {
          // gone meanwhile
        }
        if (victim === child.pid) await childExit;
        else await waitForPidExit(victim, 5000);
      }
      if (pid !== null) this.exits.delete(pid);
      await this.cleanup(launch.apiSocket, launch.jail).catch((e: unknown) =>
        this.log(`firecracker ${spec.id}: cleanup after a failed start: ${String(e)}`),
      );
      throw err;
    }
  }

  async stop(handle: VmHandle, timeoutMs: number): Promise<'graceful' | 'killed'> {
    if (!isSameProcess(handle.pid, handle.cmdline)) {
      await this.cleanupHandle(handle);
      return 'graceful';
    }
    const record = await readLaunchRecord(this.recordOf(handle));
    if (record?.gracefulStop.support === 'unsupported') {
      // Firecracker answers SendCtrlAltDel with 204 even when no guest driver receives it: waiting would only
      // delay the kill by the whole timeout.
      this.note(
        handle,
        `graceful stop is not possible for this VM (${record.gracefulStop.reason}); stopping it at once, as a power cut`,
      );
      await this.kill(handle);
      return 'killed';
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
    if (asked)
      this.note(
        handle,
        `the guest did not shut down within ${Math.round(timeoutMs / 1000)} s of Ctrl-Alt-Del; killing it`,
      );
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

  /**
   * Whether the handle still names this VM's live Firecracker. A VM found gone (its process ended and nothing
   * answers on its socket) has its jail, cgroups and network namespace removed; one that never got
   * InstanceStart (the daemon died mid-start) is killed first, since nothing else would (a jailed process's
   * command line names no path of the daemon's).
   */
  async adopt(handle: VmHandle): Promise<boolean> {
    const api = new FirecrackerApi(handle.controlSocket, { timeoutMs: this.apiTimeoutMs });
    let state: string | null = null;
    try {
      state = (await api.describeInstance()).state;
    } catch (err) {
      if (!isFiredeckError(err)) throw err;
    }
    if (!isSameProcess(handle.pid, handle.cmdline)) {
      if (state === null) await this.cleanupHandle(handle);
      return false;
    }
    if (state === null) return false;
    if (state !== 'Not started') return true;
    await this.kill(handle);
    return false;
  }

  /**
   * A directly launched Firecracker of ours: the configured binary start() runs (argv[0] and the executable), as
   * the daemon's own user, with exactly `--api-sock <vmRunRoot>/<id>/firecracker.sock --id <id>` (prepareDirect).
   * A jailed Firecracker names no path of the daemon's and runs as the jail's uid: it is found through its
   * handle (adopt), never claimed here.
   */
  launchedVm(proc: ProcessView, vmRunRoot: string): string | null {
    if (this.jailer !== null) return null;
    const { argv } = proc;
    const uid = process.getuid?.() ?? 0;
    if (proc.uids.length === 0 || proc.uids.some((u) => u !== uid)) return null;
    const binary = findExecutable(this.binary);
    if (binary === null || argv.length !== 5 || argv[0] !== binary || !runsExecutable(proc.exe, binary)) return null;
    const id = argv[4]!;
    if (argv[1] !== '--api-sock' || argv[3] !== '--id' || !/^[A-Za-z0-9-]{1,64}$/.test(id)) return null;
    return argv[2] === path.join(vmRunRoot, id, RUN_FILES.apiSocket) ? id : null;
  }

  private async prepareDirect(spec: VmLaunchSpec, gracefulStop: GracefulStop): Promise<Launch> {
    const apiSocket = path.join(spec.runDir, RUN_FILES.apiSocket);
    const vsock = path.join(spec.runDir, RUN_FILES.vsock);
    await clearSockets([apiSocket, vsock]);
    const fifo = path.join(spec.runDir, RUN_FILES.serialFifo);
    await makeFifo(fifo, process.getuid?.() ?? 0, process.getgid?.() ?? 0);
    await writeLaunchRecord(path.join(spec.runDir, RUN_FILES.record), {
      restore: [],
      cgroupDirs: [],
      netns: null,
      hostDevice: null,
      gracefulStop,
    });
    return {
      args: ['--api-sock', apiSocket, '--id', spec.id],
      apiSocket,
      fifo,
      jail: null,
      paths: {
        kernel: spec.kernelPath,
        initrd: spec.initrdPath,
        rootfs: spec.rootfsPath,
        configDrive: spec.configDrivePath,
        serial: fifo,
        vsock,
        tap: spec.tap,
      },
    };
  }

  private async prepareJail(
    spec: VmLaunchSpec,
    jailer: JailerOptions,
    binary: string,
    gracefulStop: GracefulStop,
  ): Promise<Launch> {
    // The jailer names the chroot after the canonical exec file (a symlink's target), so the driver does too.
    const execFile = canonicalExecFile(binary);
    const jail = jailLayout(jailer, execFile, spec.id);
    const vsock = path.join(jail.chrootDir, RUN_FILES.vsock);
    await clearSockets([jail.apiSocketOnHost, vsock]);

    const cgroupVersion = this.cgroupVersion();
    const cgroups =
      cgroupVersion === null
        ? []
        : [
            ...((jailer.limits ?? true) ? vmCgroupLimits(cgroupVersion, spec.vcpus, spec.memoryMib) : []),
            ...(jailer.cgroups ?? []),
          ];
    const parent = jailer.parentCgroup ?? DEFAULT_PARENT_CGROUP;
    const ownNetns = (jailer.netns ?? 'per-vm') === 'per-vm' && spec.tap !== null;
    const netns = ownNetns ? netnsName(jailer, spec.id) : null;
    // Read before the stale jail (and with it, maybe, the VM's device) is cleared away.
    const port = ownNetns && spec.tap !== null ? await hostPort(spec.tap) : null;
    const launch: JailLaunch = { cgroupVersion, cgroups, netnsPath: netns === null ? null : netnsPath(netns) };
    const args = jailerArgs(jailer, execFile, spec.id, launch);

    const files: JailFile[] = [
      { name: 'vmlinux', hostPath: spec.kernelPath, kind: 'shared' },
      { name: 'rootfs.img', hostPath: spec.rootfsPath, kind: 'disk' },
    ];
    if (spec.initrdPath !== null) files.push({ name: 'initrd', hostPath: spec.initrdPath, kind: 'shared' });
    if (spec.configDrivePath !== null)
      files.push({ name: 'config.img', hostPath: spec.configDrivePath, kind: 'private' });
    const cgroupDirs =
      cgroupVersion === null ? [] : vmCgroupDirs(cgroupVersion, cgroups, parent, spec.id, jailer.procMounts);
    try {
      const fifo = await stageJail(jail, jailer, files, RUN_FILES.serialFifo, {
        cgroupDirs,
        netns,
        hostDevice: netns === null ? null : spec.tap,
        gracefulStop,
      });
      let tap = spec.tap;
      if (netns !== null && spec.tap !== null && port !== null) {
        tap = (await createJailNetwork({ netns, hostDevice: spec.tap, uid: jailer.uid, gid: jailer.gid, port })).tap;
      }
      return {
        args,
        apiSocket: jail.apiSocketOnHost,
        fifo,
        jail,
        paths: {
          kernel: '/vmlinux',
          initrd: spec.initrdPath === null ? null : '/initrd',
          rootfs: '/rootfs.img',
          configDrive: spec.configDrivePath === null ? null : '/config.img',
          serial: `/${RUN_FILES.serialFifo}`,
          vsock: `/${RUN_FILES.vsock}`,
          tap,
        },
      };
    } catch (err) {
      await cleanupJail(jail, jailer).catch(() => undefined);
      throw err;
    }
  }

  /** The cgroup version for the jailer, or null when no cgroup is set; throws when the host has no fit. */
  private cgroupVersion(): CgroupVersion | null {
    const jailer = this.jailer;
    if (jailer === null) return null;
    const limits = jailer.limits ?? true;
    const extra = jailer.cgroups ?? [];
    if (!limits && extra.length === 0) return null;
    if (jailer.cgroupVersion !== undefined && jailer.cgroupVersion !== 'auto') return jailer.cgroupVersion;
    const controllers = new Set<string>(extra.map(controllerOf));
    if (limits) for (const c of LIMIT_CONTROLLERS) controllers.add(c);
    return detectCgroupVersion([...controllers], jailer.procMounts);
  }

  /**
   * Firecracker's pid under the jailer: from `<chroot>/<exec-file-name>.pid`, which the jailer writes in every
   * mode (docs/jailer.md, env.rs save_exec_file_pid). With --daemonize (Firecracker ≥ 1.6 double-forks) or
   * --new-pid-ns the jailer itself exits 0 once its child runs, and the grandchild writes the file after that:
   * the jailer's exit is no failure, a non-zero one is.
   */
  private async jailedPid(
    jail: JailLayout,
    jailerPid: number,
    jailerExit: Exit,
    deadline: number,
    processLog: string,
  ): Promise<number> {
    const detaches = (this.jailer?.daemonize ?? true) || this.jailer?.newPidNs === true;
    let failed: string | null = null;
    void jailerExit.then((how) => {
      if (!detaches || how !== 'code 0') failed = how;
    });
    const pid = await waitForPidFile(jail.pidFile, deadline, () => failed);
    if (pid === null) {
      const how = failed as string | null;
      throw new FiredeckError(
        how === null ? 'timeout' : 'unavailable',
        how === null
          ? `the jailer wrote no pid file ${jail.pidFile} within ${this.startTimeoutMs} ms`
          : `the jailer exited (${how}) before Firecracker ran`,
        {
          hint:
            how === null && detaches
              ? 'under --daemonize the jailed process has no output; check the jail setup (uid, chroot base, netns)'
              : undefined,
          details: { log: await tail(processLog), jailerPid },
        },
      );
    }
    return pid;
  }

  private async configure(
    api: FirecrackerApi,
    spec: VmLaunchSpec,
    paths: GuestPaths,
    rateLimiter: TokenBucket | null,
  ): Promise<void> {
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
    if (paths.tap !== null) {
      await api.putNetworkInterface(
        spec.mac === null
          ? { iface_id: 'eth0', host_dev_name: paths.tap }
          : { iface_id: 'eth0', host_dev_name: paths.tap, guest_mac: spec.mac },
      );
    }
    await api.putSerial(
      rateLimiter === null
        ? { serial_out_path: paths.serial }
        : { serial_out_path: paths.serial, rate_limiter: rateLimiter },
    );
    if (this.vsock) await api.putVsock({ guest_cid: 3, uds_path: paths.vsock });
  }

  /** A line of the daemon's in the VM's console log (through its serial FIFO) and in the daemon's log. */
  private note(handle: VmHandle, text: string): void {
    this.log(`firecracker pid ${handle.pid}: ${text}`);
    if (handle.console.kind !== 'fifo') return;
    try {
      // Non-blocking: Firecracker holds the FIFO open read-write, so this never waits for a reader.
      const fd = fs.openSync(handle.console.path, fs.constants.O_WRONLY | fs.constants.O_NONBLOCK);
      try {
        fs.writeSync(fd, `\n[firedeckd] ${text}\n`);
      } finally {
        fs.closeSync(fd);
      }
    } catch {
      // the console is gone with the process; the daemon's log has it
    }
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

  private jailOf(apiSocket: string): JailLayout | null {
    return this.jailer === null ? null : jailLayoutOfSocket(this.jailer, apiSocket);
  }

  private recordOf(handle: VmHandle): string {
    return this.jailOf(handle.controlSocket)?.record ?? path.join(path.dirname(handle.controlSocket), RUN_FILES.record);
  }

  private async cleanupHandle(handle: VmHandle): Promise<void> {
    await this.cleanup(handle.controlSocket, this.jailOf(handle.controlSocket));
  }

  /**
   * Removes what a dead Firecracker leaves: its sockets and, when jailed, the chroot, cgroups and network
   * namespace. The console log (the daemon's) stays.
   */
  private async cleanup(apiSocket: string, jail: JailLayout | null): Promise<void> {
    await fs.promises.rm(apiSocket, { force: true });
    await fs.promises.rm(path.join(path.dirname(apiSocket), RUN_FILES.vsock), { force: true });
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
  /** The TAP Firecracker opens, in its own network namespace. */
  tap: string | null;
}

interface Launch {
  args: string[];
  apiSocket: string;
  fifo: string;
  jail: JailLayout | null;
  paths: GuestPaths;
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

function explain(err: unknown): string {
  const e = FiredeckError.from(err);
  return e.hint === undefined ? e.message : `${e.message} (${e.hint})`;
}

function resolveBinary(name: string, what: string): string {
  const found = findExecutable(name);
  if (found === null) {
    throw new FiredeckError('unavailable', `${what} "${name}" not found or not executable`, {
      hint: 'install the Firecracker release binaries (firecracker, jailer) or set FIREDECK_FIRECRACKER_BINARY / FIREDECK_FIRECRACKER_JAILER_BINARY',
      details: { binary: name },
    });
  }
  return found;
}

async function clearSockets(sockets: string[]): Promise<void> {
  for (const socket of sockets) {
    if (Buffer.byteLength(socket) > MAX_SOCKET_PATH) {
      throw new FiredeckError('invalid_params', `socket path ${socket} is longer than ${MAX_SOCKET_PATH} bytes`, {
        hint: 'use a shorter run directory or chroot base',
      });
    }
    // Firecracker binds without unlinking; a file left by an earlier run would make it exit.
    await fs.promises.rm(socket, { force: true });
  }
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
function checkKernel(kernelPath: string): void {
  try {
    checkFirecrackerKernel(kernelPath);
  } catch (err) {
    const e = FiredeckError.from(err);
    throw new FiredeckError('invalid_params', e.message.replace(/^Firecracker kernel/, 'kernel'), {
      hint: e.hint,
      cause: err,
    });
  }
}

/**
 * Waits for the jailer's pid file to hold a pid. The file appears empty (O_CREAT, then the write), so it is read
 * again on every change of its directory; `failed` ends the wait early.
 */
async function waitForPidFile(file: string, deadline: number, failed: () => string | null): Promise<number | null> {
  let wake: () => void = () => undefined;
  const dir = path.dirname(file);
  await fs.promises.mkdir(dir, { recursive: true });
  const watcher = fs.watch(dir, () => wake());
  try {
    for (;;) {
      try {
        const text = (await fs.promises.readFile(file, 'utf8')).trim();
        if (/^\d+$/.test(text) && Number(text) > 0) return Number(text);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      }
      if (failed() !== null) return null;
      const left = deadline - Date.now();
      if (left <= 0) return null;
      await new Promise<void>((resolve) => {
        // The jailer's exit has no event on this directory: look again now and then.
        const timer = setTimeout(resolve, Math.min(left, 50));
        wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
  } finally {
    watcher.close();
  }
}

/**
 * Resolves once the API answers GET /. Wakes on changes in the socket's directory (the socket file appears
 * at bind); between bind and listen no event exists, so a refused connect retries after a short backoff. The
 * process's end fails the wait: `exited` for a child of ours, else `pid`, looked up in /proc (Linux gives no
 * event for the end of a process that is not one's child).
 */
export async function waitForApiSocket(
  api: FirecrackerApi,
  timeoutMs: number,
  exited: Exit | null = null,
  processLog: string | null = null,
  pid: number | null = null,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let wake: () => void = () => undefined;
  const watcher = fs.watch(path.dirname(api.socketPath), () => wake());
  let ended: string | null = null;
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
      if (ended === null && pid !== null && !pidAlive(pid)) ended = `pid ${pid} ended`;
      const exit = ended as string | null;
      if (exit !== null) {
        throw new FiredeckError('unavailable', `firecracker exited (${exit}) before its API socket answered`, {
          details: { log: await tail(processLog) },
        });
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
      const nap = socketExists ? Math.min(backoff, left) : pid !== null ? Math.min(50, left) : left;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, nap);
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
