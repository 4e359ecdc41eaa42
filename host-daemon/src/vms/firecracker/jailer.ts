import fs from 'node:fs';
import path from 'node:path';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { z } from 'zod';
import { FiredeckError } from '../../../../src/shared/errors';

const run = promisify(execFile);

/** How to run Firecracker under its `jailer` (chroot, uid/gid drop, cgroups, network namespace). */
export interface JailerOptions {
  /** The jailer binary: a name on PATH or an absolute path. */
  binary: string;
  uid: number;
  gid: number;
  /** Default `/srv/jailer`. Must be on the filesystem that holds the VM disks: rootfs files are hard-linked in. */
  chrootBaseDir?: string;
  cgroupVersion?: 1 | 2;
  /** `<cgroup_file>=<value>`, e.g. `cpu.max=100000 100000`. */
  cgroups?: string[];
  parentCgroup?: string;
  /** Network namespace handle for a VM (e.g. `/var/run/netns/<name>`); its TAP must live in that namespace. */
  netnsFor?: (vmId: string) => string | null;
  /** The jailer calls setsid() and points stdio at /dev/null. */
  daemonize?: boolean;
  /** Firecracker runs as pid 1 of a new pid namespace; its host pid is read from `<chroot>/<exec>.pid`. */
  newPidNs?: boolean;
}

export const DEFAULT_CHROOT_BASE = '/srv/jailer';
/** The jailed Firecracker's API socket, as seen inside the chroot. */
export const JAILED_API_SOCKET = '/run/firecracker.socket';

/** Where the jailer puts one VM; `chrootDir` is `<chroot-base>/<exec-file-name>/<id>/root`. */
export interface JailLayout {
  execName: string;
  vmId: string;
  jailDir: string;
  chrootDir: string;
  apiSocketOnHost: string;
  pidFile: string;
  manifest: string;
}

export function jailLayout(options: JailerOptions, firecrackerBinary: string, vmId: string): JailLayout {
  const execName = path.basename(firecrackerBinary);
  const jailDir = path.join(options.chrootBaseDir ?? DEFAULT_CHROOT_BASE, execName, vmId);
  const chrootDir = path.join(jailDir, 'root');
  return {
    execName,
    vmId,
    jailDir,
    chrootDir,
    apiSocketOnHost: path.join(chrootDir, JAILED_API_SOCKET),
    pidFile: path.join(chrootDir, `${execName}.pid`),
    // Beside the chroot, not in it: the jailed process cannot see or change it.
    manifest: path.join(jailDir, 'firedeck-staged.json'),
  };
}

/** The jail a control socket belongs to, when it lies under the configured chroot base. */
export function jailLayoutOfSocket(options: JailerOptions, apiSocket: string): JailLayout | null {
  const base = path.resolve(options.chrootBaseDir ?? DEFAULT_CHROOT_BASE);
  if (!apiSocket.endsWith(JAILED_API_SOCKET) || !apiSocket.startsWith(`${base}/`)) return null;
  const chrootDir = apiSocket.slice(0, -JAILED_API_SOCKET.length);
  const jailDir = path.dirname(chrootDir);
  const relative = path.relative(base, jailDir).split(path.sep);
  if (relative.length !== 2 || path.basename(chrootDir) !== 'root') return null;
  return jailLayout(options, relative[0]!, relative[1]!);
}

/** The jailer's command line; everything after `--` goes to Firecracker. */
export function jailerArgs(options: JailerOptions, firecrackerBinary: string, vmId: string): string[] {
  if (!path.basename(firecrackerBinary).includes('firecracker')) {
    throw new FiredeckError('invalid_params', `the jailer only execs a file whose name contains "firecracker"`, {
      details: { execFile: firecrackerBinary },
    });
  }
  if (!Number.isInteger(options.uid) || options.uid < 0 || !Number.isInteger(options.gid) || options.gid < 0) {
    throw new FiredeckError('invalid_params', 'jailer uid and gid must be non-negative integers');
  }
  const args = [
    '--id',
    vmId,
    '--exec-file',
    firecrackerBinary,
    '--uid',
    String(options.uid),
    '--gid',
    String(options.gid),
  ];
  args.push('--chroot-base-dir', options.chrootBaseDir ?? DEFAULT_CHROOT_BASE);
  if (options.cgroupVersion !== undefined) args.push('--cgroup-version', String(options.cgroupVersion));
  if (options.parentCgroup !== undefined) args.push('--parent-cgroup', options.parentCgroup);
  for (const cgroup of options.cgroups ?? []) {
    if (!/^[a-z0-9_]+\.[a-z0-9_.]+=[^\n]+$/.test(cgroup)) {
      throw new FiredeckError('invalid_params', `not a jailer cgroup setting (<file>=<value>): ${cgroup}`);
    }
    args.push('--cgroup', cgroup);
  }
  const netns = options.netnsFor?.(vmId) ?? null;
  if (netns !== null) args.push('--netns', netns);
  if (options.daemonize === true) args.push('--daemonize');
  if (options.newPidNs === true) args.push('--new-pid-ns');
  // The jailer passes --id itself.
  args.push('--', '--api-sock', JAILED_API_SOCKET);
  return args;
}

/** One file the jailed Firecracker opens, placed at `/<name>` inside the chroot. */
export interface JailFile {
  name: string;
  hostPath: string;
  /** Firecracker writes it (rootfs, serial log): give it to the jail's uid/gid. */
  writable: boolean;
  /** A copy would break the VM (its rootfs must stay the file the daemon manages): hard link or fail. */
  linkOnly: boolean;
}

const Manifest = z.object({ restore: z.array(z.object({ path: z.string(), uid: z.number(), gid: z.number() })) });

/**
 * Builds the chroot before the jailer runs: hard links (or reflink copies, across filesystems) of the VM's
 * files, and a `run/` directory the jailed uid can create its socket in. Returns the in-chroot paths by name.
 */
export async function stageJail(
  layout: JailLayout,
  options: JailerOptions,
  files: JailFile[],
): Promise<Record<string, string>> {
  await cleanupJail(layout, options);
  await fs.promises.mkdir(path.join(layout.chrootDir, 'run'), { recursive: true, mode: 0o750 });
  await fs.promises.chown(path.join(layout.chrootDir, 'run'), options.uid, options.gid);
  const restore: z.infer<typeof Manifest>['restore'] = [];
  const inJail: Record<string, string> = {};
  try {
    for (const file of files) {
      if (!/^[A-Za-z0-9._-]+$/.test(file.name)) throw new Error(`bad jail file name ${file.name}`);
      const target = path.join(layout.chrootDir, file.name);
      const linked = await linkOrCopy(file, target);
      if (file.writable) {
        if (linked) {
          const before = await fs.promises.stat(file.hostPath);
          restore.push({ path: file.hostPath, uid: before.uid, gid: before.gid });
        }
        await fs.promises.chown(target, options.uid, options.gid);
      }
      inJail[file.name] = `/${file.name}`;
    }
  } finally {
    await fs.promises.writeFile(layout.manifest, JSON.stringify({ restore }));
  }
  return inJail;
}

async function linkOrCopy(file: JailFile, target: string): Promise<boolean> {
  try {
    await fs.promises.link(file.hostPath, target);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EXDEV') throw err;
  }
  if (file.linkOnly) {
    throw new FiredeckError('invalid_state', `cannot hard-link ${file.hostPath} into the jail at ${target}`, {
      hint: "put the jailer's chroot base directory on the filesystem that holds the VM disks",
    });
  }
  await run('cp', ['--reflink=auto', '--sparse=always', file.hostPath, target]);
  return false;
}

/**
 * Removes a VM's jail directory (and its cgroup v2 directory) once its process is gone, giving hard-linked
 * files back their owners. Safe to call repeatedly and after a daemon restart (it reads the manifest it left
 * beside the chroot).
 */
export async function cleanupJail(layout: JailLayout, options: JailerOptions): Promise<void> {
  let manifest: z.infer<typeof Manifest> = { restore: [] };
  try {
    manifest = Manifest.parse(JSON.parse(await fs.promises.readFile(layout.manifest, 'utf8')));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  for (const entry of manifest.restore) {
    await fs.promises.chown(entry.path, entry.uid, entry.gid).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== 'ENOENT') throw err;
    });
  }
  await fs.promises.rm(layout.jailDir, { recursive: true, force: true });
  if (options.cgroupVersion === 2 && (options.cgroups ?? []).length > 0) {
    const cgroup = path.join('/sys/fs/cgroup', options.parentCgroup ?? layout.execName, layout.vmId);
    // A cgroup directory goes with rmdir once empty; ENOENT: never made, EBUSY: a process still in it.
    await fs.promises.rmdir(cgroup).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== 'ENOENT' && err.code !== 'EBUSY') throw err;
    });
  }
}
