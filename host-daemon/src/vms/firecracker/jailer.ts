import fs from 'node:fs';
import path from 'node:path';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { FiredeckError } from '../../../../src/shared/errors';
import { checkCgroupSetting, checkParentCgroup, type CgroupVersion } from './cgroups';
import { readLaunchRecord, writeLaunchRecord, type LaunchRecord } from './launchRecord';
import { removeJailNetwork } from './jailNetwork';

const run = promisify(execFile);

/**
 * How to run Firecracker under its `jailer` (docs/jailer.md, docs/prod-host-setup.md of
 * firecracker-microvm/firecracker): a chroot with the VM's files linked in, an unprivileged uid/gid, cgroup
 * limits, the VM's own network namespace.
 */
export interface JailerOptions {
  /** The jailer binary: a name on PATH or an absolute path. */
  binary: string;
  /** The unprivileged user and group Firecracker runs as (never root). */
  uid: number;
  gid: number;
  /**
   * Where the jails go (the jailer's default is /srv/jailer). It must be on the filesystem that holds the VM
   * disks: rootfs files are hard-linked in, never copied.
   */
  chrootBaseDir: string;
  /** `auto` (default) asks /proc/mounts which hierarchy holds the controllers, as the jailer does. */
  cgroupVersion?: CgroupVersion | 'auto';
  /** CPU (a core per vCPU) and memory (the guest's plus headroom) limits per VM (default true). */
  limits?: boolean;
  /** Further `<cgroup_file>=<value>` settings for every VM, e.g. `cpuset.cpus=2-7`. */
  cgroups?: string[];
  /** Relative path in the cgroup hierarchy under which each VM's cgroup `<id>` goes (default `firedeck`). */
  parentCgroup?: string;
  /**
   * `per-vm` (default): each VM in its own network namespace with its TAP inside (jailNetwork.ts);
   * `host`: the jail stays in the host's namespace and opens the VM's TAP there.
   */
  netns?: 'per-vm' | 'host';
  /** Prefix of the per-VM namespace names, `<prefix><vm id>` (default `firedeck-`). */
  netnsPrefix?: string;
  /** The jailer double-forks, calls setsid() and points stdio at /dev/null (default true). */
  daemonize?: boolean;
  /** Firecracker runs as pid 1 of a new pid namespace (default false). */
  newPidNs?: boolean;
  /** Where cgroup mounts are read (default /proc/mounts; tests point it at a fixture, as the jailer's do). */
  procMounts?: string;
}

export const DEFAULT_PARENT_CGROUP = 'firedeck';
/** The jailed Firecracker's API socket, as seen inside the chroot (the jailer's documented default). */
export const JAILED_API_SOCKET = '/run/firecracker.socket';

/** Where the jailer puts one VM: `<chroot-base>/<exec-file-name>/<id>/root` (env.rs Env::new). */
export interface JailLayout {
  /** The file name of the canonical exec file: the jailer resolves symlinks before naming the chroot. */
  execName: string;
  vmId: string;
  jailDir: string;
  chrootDir: string;
  apiSocketOnHost: string;
  /** `<chroot>/<exec-file-name>.pid`, which the jailer writes whether or not it makes a new pid namespace. */
  pidFile: string;
  /** The daemon's record of the launch, beside the chroot where the jailed process cannot see it. */
  record: string;
}

/** The layout for the exec file as given: its canonical path names the chroot, as for the jailer. */
export function jailLayout(options: Pick<JailerOptions, 'chrootBaseDir'>, execFile: string, vmId: string): JailLayout {
  const execName = path.basename(canonicalExecFile(execFile));
  return layoutOf(path.resolve(options.chrootBaseDir), execName, vmId);
}

function layoutOf(base: string, execName: string, vmId: string): JailLayout {
  const jailDir = path.join(base, execName, vmId);
  const chrootDir = path.join(jailDir, 'root');
  return {
    execName,
    vmId,
    jailDir,
    chrootDir,
    apiSocketOnHost: path.join(chrootDir, JAILED_API_SOCKET),
    pidFile: path.join(chrootDir, `${execName}.pid`),
    record: path.join(jailDir, 'firedeck-launch.json'),
  };
}

/** env.rs validate_exec_file: canonicalize() follows every symlink; the file name of the target names the jail. */
export function canonicalExecFile(execFile: string): string {
  try {
    return fs.realpathSync(execFile);
  } catch (err) {
    throw new FiredeckError(
      'unavailable',
      `Firecracker binary ${execFile} cannot be resolved: ${(err as Error).message}`,
      {
        hint: 'set FIREDECK_FIRECRACKER_BINARY to the Firecracker release binary',
      },
    );
  }
}

/** The jail a control socket belongs to, when it lies under the configured chroot base. */
export function jailLayoutOfSocket(
  options: Pick<JailerOptions, 'chrootBaseDir'>,
  apiSocket: string,
): JailLayout | null {
  const base = path.resolve(options.chrootBaseDir);
  if (!apiSocket.endsWith(JAILED_API_SOCKET) || !apiSocket.startsWith(`${base}/`)) return null;
  const chrootDir = apiSocket.slice(0, -JAILED_API_SOCKET.length);
  const jailDir = path.dirname(chrootDir);
  const relative = path.relative(base, jailDir).split(path.sep);
  if (relative.length !== 2 || path.basename(chrootDir) !== 'root') return null;
  return layoutOf(base, relative[0]!, relative[1]!);
}

/** Refuses, before anything runs, what the jailer would refuse and what would defeat the jail. */
export function checkJailerOptions(options: JailerOptions): void {
  for (const [what, id] of [
    ['uid', options.uid],
    ['gid', options.gid],
  ] as const) {
    if (!Number.isInteger(id) || id < 0 || id > 0xfffffffe) {
      throw new FiredeckError('invalid_params', `jailer ${what} ${id} is not a valid id`, {
        hint: 'set FIREDECK_FIRECRACKER_USER to an unprivileged user',
      });
    }
    if (id === 0) {
      throw new FiredeckError('invalid_params', `the jailer would run Firecracker with ${what} 0 (root)`, {
        hint: 'create an unprivileged user for Firecracker (useradd --system --no-create-home --shell /usr/sbin/nologin firedeck-fc) and set FIREDECK_FIRECRACKER_USER to it',
      });
    }
  }
  if (!path.isAbsolute(options.chrootBaseDir)) {
    throw new FiredeckError('invalid_params', `jailer chroot base ${options.chrootBaseDir} is not an absolute path`);
  }
  checkParentCgroup(options.parentCgroup ?? DEFAULT_PARENT_CGROUP);
  for (const setting of options.cgroups ?? []) checkCgroupSetting(setting);
}

/** What one VM's jailer launch uses beyond the options: its cgroups and network namespace. */
export interface JailLaunch {
  cgroupVersion: CgroupVersion | null;
  /** Every `--cgroup` for this VM, limits and the configured ones. */
  cgroups: string[];
  netnsPath: string | null;
}

/** The jailer's command line; everything after `--` goes to Firecracker (the jailer passes --id itself). */
export function jailerArgs(options: JailerOptions, execFile: string, vmId: string, launch: JailLaunch): string[] {
  checkJailerOptions(options);
  for (const setting of launch.cgroups) checkCgroupSetting(setting);
  const args = ['--id', vmId, '--exec-file', execFile, '--uid', String(options.uid), '--gid', String(options.gid)];
  args.push('--chroot-base-dir', options.chrootBaseDir);
  if (launch.cgroups.length > 0) {
    // Without it the jailer looks for cgroup v1 hierarchies, which a cgroup v2 host does not have.
    if (launch.cgroupVersion === null) throw new FiredeckError('internal', 'cgroups without a cgroup version');
    args.push('--cgroup-version', String(launch.cgroupVersion));
    args.push('--parent-cgroup', options.parentCgroup ?? DEFAULT_PARENT_CGROUP);
    for (const setting of launch.cgroups) args.push('--cgroup', setting);
  }
  if (launch.netnsPath !== null) args.push('--netns', launch.netnsPath);
  if (options.daemonize ?? true) args.push('--daemonize');
  if (options.newPidNs === true) args.push('--new-pid-ns');
  args.push('--', '--api-sock', JAILED_API_SOCKET);
  return args;
}

/**
 * One file the jailed Firecracker opens, placed at `/<name>` inside the chroot:
 *  - `disk`: Firecracker writes it (the rootfs): hard-linked, never copied (it must stay the file the daemon
 *    manages), and given to the jail's uid/gid for the VM's life;
 *  - `shared`: read only (kernel, initrd): hard-linked when the jail's uid may read it anyway, else copied;
 *  - `private`: read only, but the host keeps it from other users (the config drive holds secrets): a copy
 *    only the jail's uid can read.
 */
export interface JailFile {
  name: string;
  hostPath: string;
  kind: 'disk' | 'shared' | 'private';
}

/**
 * Builds the chroot before the jailer runs (docs/jailer.md: "the user must create hard links for (or copy) any
 * resources … inside the jailed root folder"): hard links of the kernel, initrd and disks (never a copy of a
 * disk: it must stay the file the daemon manages), private copies where a file must not change owner, a
 * `run/` directory the jailed uid creates its socket in, and the serial console FIFO. Returns the FIFO's host
 * path. Whatever changes owner is recorded, so that cleanup gives it back even after a daemon restart.
 */
export async function stageJail(
  layout: JailLayout,
  options: JailerOptions,
  files: JailFile[],
  serialFifo: string,
  record: Omit<LaunchRecord, 'restore'>,
): Promise<string> {
  await cleanupJail(layout, options);
  await fs.promises.mkdir(path.join(layout.chrootDir, 'run'), { recursive: true, mode: 0o700 });
  await fs.promises.chown(path.join(layout.chrootDir, 'run'), options.uid, options.gid);
  const restore: LaunchRecord['restore'] = [];
  const save = (): Promise<void> => writeLaunchRecord(layout.record, { ...record, restore });
  try {
    for (const file of files) {
      if (!/^[A-Za-z0-9._-]+$/.test(file.name)) throw new Error(`bad jail file name ${file.name}`);
      const target = path.join(layout.chrootDir, file.name);
      const before = await fs.promises.stat(file.hostPath);
      if (file.kind === 'disk') {
        await link(file.hostPath, target);
        restore.push({ path: file.hostPath, uid: before.uid, gid: before.gid });
        await save();
        await fs.promises.chown(target, options.uid, options.gid);
        continue;
      }
      const othersRead = (before.mode & 0o004) !== 0;
      if (file.kind === 'shared' && othersRead && (await tryLink(file.hostPath, target))) continue;
      await run('cp', ['--reflink=auto', '--sparse=always', file.hostPath, target]);
      await fs.promises.chown(target, options.uid, options.gid);
      await fs.promises.chmod(target, 0o400);
    }
    const fifo = path.join(layout.chrootDir, serialFifo);
    await makeFifo(fifo, options.uid, options.gid);
    return fifo;
  } finally {
    await save();
  }
}

/** A FIFO owned by uid:gid, mode 0600 (Node has no mkfifo of its own). */
export async function makeFifo(file: string, uid: number, gid: number): Promise<void> {
  await fs.promises.rm(file, { force: true });
  await run('mkfifo', ['-m', '0600', file]);
  await fs.promises.chown(file, uid, gid);
}

async function link(hostPath: string, target: string): Promise<void> {
  if (!(await tryLink(hostPath, target))) {
    throw new FiredeckError('invalid_state', `cannot hard-link ${hostPath} into the jail at ${target}`, {
      hint: "put the jailer's chroot base (FIREDECK_FIRECRACKER_CHROOT_BASE) on the filesystem that holds the VM disks",
    });
  }
}

/** A hard link, or false when the two paths are on different filesystems. */
async function tryLink(hostPath: string, target: string): Promise<boolean> {
  try {
    await fs.promises.link(hostPath, target);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EXDEV') throw err;
    return false;
  }
}

/**
 * Removes a VM's jail once its process is gone: owners and modes of linked files given back, the jail
 * directory, the cgroup directories the jailer made and the network namespace. Safe to call repeatedly and
 * after a daemon restart (it reads the record it left beside the chroot).
 */
export async function cleanupJail(layout: JailLayout, options: JailerOptions): Promise<void> {
  const record = await readLaunchRecord(layout.record);
  for (const entry of record?.restore ?? []) {
    try {
      await fs.promises.chown(entry.path, entry.uid, entry.gid);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
  }
  await fs.promises.rm(layout.jailDir, { recursive: true, force: true });
  for (const dir of record?.cgroupDirs ?? []) {
    // A cgroup directory goes with rmdir once no process is in it; ENOENT: never made, EBUSY: a process still
    // in it, ENOTEMPTY: a child cgroup someone else made. Those stay, and the next start of the VM reuses them.
    await fs.promises.rmdir(dir).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== 'ENOENT' && err.code !== 'EBUSY' && err.code !== 'ENOTEMPTY') throw err;
    });
  }
  const netns = record?.netns ?? ((options.netns ?? 'per-vm') === 'per-vm' ? netnsName(options, layout.vmId) : null);
  if (netns !== null) await removeJailNetwork(netns, record?.hostDevice ?? null);
}

export function netnsName(options: Pick<JailerOptions, 'netnsPrefix'>, vmId: string): string {
  return `${options.netnsPrefix ?? 'firedeck-'}${vmId}`;
}
