import type { DriverAvailability, DriverName } from '../../../src/shared/protocol/daemon';
import type { VmKind } from '../../../src/shared/protocol/vm';
import type { ConsoleSource, VmHandle } from '../store/vmHandle';
import type { ProcessView } from '../system/processes';

/** The handle types live with the store that persists them; drivers and consoles name them from here. */
export type { ConsoleSource, VmHandle };

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
  /**
   * The VM id when `proc` is a hypervisor this driver launched for a VM whose run dir lies in `vmRunRoot`: the
   * exact argv it builds, the executable it runs, the user it runs it as. Null for every other process;
   * reconcile kills only processes some driver claims.
   */
  launchedVm(proc: ProcessView, vmRunRoot: string): string | null;
}
