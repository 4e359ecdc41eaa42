import type { DriverAvailability, DriverName } from '../../../src/shared/protocol/daemon';
import type { VmKind } from '../../../src/shared/protocol/vm';

/**
 * Where a running VM's serial console can be read (and, for sockets, written): QEMU's chardev socket, a file, or
 * a FIFO the hypervisor writes into (Firecracker's `serial_out_path`; nothing lands on disk but the capped log).
 */
export type ConsoleSource =
  | { kind: 'unix-socket'; path: string }
  | { kind: 'file'; path: string }
  | { kind: 'fifo'; path: string };

/** Everything a driver needs to boot one VM; the daemon prepares every path before calling `start`. */
export interface VmLaunchSpec {
  id: string;
  name: string;
  kind: VmKind;
  vcpus: number;
  memoryMib: number;
  kernelPath: string;
  initrdPath: string | null;
  /** The complete kernel command line (console, root, ip=, hostname). */
  kernelArgs: string;
  rootfsPath: string;
  rootfsFormat: 'raw' | 'qcow2';
  /** The read-only FDCONFIG drive, attached as the second disk. */
  configDrivePath: string | null;
  tap: string | null;
  mac: string | null;
  /** A directory owned by this VM for sockets, pid files and logs. */
  runDir: string;
}

/** What identifies a live VM process, persisted so that a restarted daemon can adopt it. */
export interface VmHandle {
  pid: number;
  /** The process's command line as /proc shows it, joined by NUL, used to verify adoption. */
  cmdline: string;
  /** Control socket (QMP for QEMU, API socket for Firecracker). */
  controlSocket: string;
  console: ConsoleSource;
}

export interface VmInspection {
  alive: boolean;
  /** Driver-reported status, e.g. QMP `running`, `paused`, `shutdown`. */
  status: string | null;
}

/** One interface for every hypervisor (architecture: create, start, stop, kill, inspect, adopt). */
export interface VmDriver {
  readonly name: DriverName;
  availability(): Promise<DriverAvailability>;
  /** Boots the VM; resolves once the hypervisor process runs and its control socket answers. */
  start(spec: VmLaunchSpec): Promise<VmHandle>;
  /** Graceful power-down (ACPI / Ctrl-Alt-Del), then kill after `timeoutMs`. */
  stop(handle: VmHandle, timeoutMs: number): Promise<'graceful' | 'killed'>;
  kill(handle: VmHandle): Promise<void>;
  inspect(handle: VmHandle): Promise<VmInspection>;
  /** Checks that a persisted handle still names the same live process (pid, cmdline, socket). */
  adopt(handle: VmHandle): Promise<boolean>;
}
