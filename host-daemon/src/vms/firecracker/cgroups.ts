import fs from 'node:fs';
import path from 'node:path';
import { FiredeckError } from '../../../../src/shared/errors';

// What the jailer accepts and where it puts a VM's cgroups, as firecracker-microvm/firecracker's
// src/jailer/src/env.rs (Env::new) and src/jailer/src/cgroup.rs do it, checked here before the jailer runs so
// that a bad setting is a typed error naming it rather than a jailer exit status.

export type CgroupVersion = 1 | 2;

/** The default period of the CPU bandwidth controller (100 ms), in microseconds. */
const CPU_PERIOD_US = 100_000;
/**
 * Memory a Firecracker process needs beyond the guest's: the VMM itself stays under 5 MiB (SPECIFICATION.md);
 * the rest is for the page cache of the VM's disk I/O, which is charged to the cgroup and reclaimed under it.
 */
const MEMORY_HEADROOM_MIB = 64;

/**
 * A `--cgroup` value: `<controller>.<property>=<value>`, exactly one `=` (env.rs splits on every `=`, so a
 * value such as `io.max=8:0 rbps=1` is refused), a non-empty value, a plain file name.
 */
export function checkCgroupSetting(setting: string): void {
  const parts = setting.split('=');
  const fail = (why: string): never => {
    throw new FiredeckError('invalid_params', `jailer cgroup setting ${JSON.stringify(setting)} is refused: ${why}`, {
      hint: 'write each setting as <controller>.<property>=<value>, e.g. cpu.max=200000 100000; the jailer allows no second "=" in the value',
      details: { setting },
    });
  };
  if (parts.length !== 2) fail(parts.length < 2 ? 'it has no "="' : 'its value contains "="');
  const [file, value] = parts as [string, string];
  if (value === '') fail('its value is empty');
  if (!/^[A-Za-z0-9_]+\.[A-Za-z0-9_.]+$/.test(file) || file.split('.').some((p) => p === '')) {
    fail(`${JSON.stringify(file)} is not a cgroup file name of the form <controller>.<property>`);
  }
  if (/[\n\r]/.test(value)) fail('its value spans lines');
}

/** `--parent-cgroup`: a relative path inside the hierarchy, without `.` or `..` (env.rs CgroupInvalidParentPath). */
export function checkParentCgroup(parent: string): void {
  const components = parent.split('/');
  const bad =
    parent === '' ||
    parent.startsWith('/') ||
    components.some((c) => c === '.' || c === '..' || c === '') ||
    !components.every((c) => /^[A-Za-z0-9_.@:-]+$/.test(c));
  if (bad) {
    throw new FiredeckError('invalid_params', `jailer parent cgroup ${JSON.stringify(parent)} is refused`, {
      hint: 'give a relative path inside the cgroup hierarchy, e.g. firedeck or firedeck/vms, with no "." or ".." and no leading "/"',
      details: { parentCgroup: parent },
    });
  }
}

/** The controller a cgroup file belongs to (`cpu.max` → `cpu`). */
export function controllerOf(setting: string): string {
  return setting.split('.')[0]!;
}

interface CgroupMount {
  dir: string;
  version: CgroupVersion;
  /** v1: the controllers mounted there; v2: those listed in cgroup.controllers. */
  controllers: Set<string>;
}

/** The cgroup mounts of this host, as the jailer finds them in /proc/mounts (cgroup.rs CgroupHierarchies). */
export function cgroupMounts(procMounts = '/proc/mounts'): CgroupMount[] {
  let text: string;
  try {
    text = fs.readFileSync(procMounts, 'utf8');
  } catch (err) {
    throw new FiredeckError('unavailable', `cannot read ${procMounts}: ${(err as Error).message}`);
  }
  const mounts: CgroupMount[] = [];
  for (const line of text.split('\n')) {
    const m = /^([a-z2]*)\s(.*)\scgroup(2?)\s(.*)\s0\s0$/.exec(line);
    if (m === null) continue;
    const [, , dir, v2, options] = m as unknown as [string, string, string, string, string];
    if (v2 === '2') {
      let listed: string[] = [];
      try {
        listed = fs.readFileSync(path.join(dir, 'cgroup.controllers'), 'utf8').trim().split(/\s+/);
      } catch {
        // an unreadable hierarchy offers nothing
      }
      mounts.push({ dir, version: 2, controllers: new Set(listed.filter((c) => c !== '')) });
    } else {
      mounts.push({ dir, version: 1, controllers: new Set(options.split(',')) });
    }
  }
  return mounts;
}

/**
 * The cgroup version the jailer must be told (its `--cgroup-version` defaults to 1, which fails on a host with
 * cgroup v2 only): 2 when the unified hierarchy offers every controller asked for (a v2-only host, or a hybrid
 * one whose controllers moved to v2), else 1 when v1 hierarchies mount them all (a v1 or hybrid host).
 */
export function detectCgroupVersion(controllers: readonly string[], procMounts = '/proc/mounts'): CgroupVersion {
  const mounts = cgroupMounts(procMounts);
  // cgroup.rs takes the first cgroup2 mount as "unified".
  const unified = mounts.find((m) => m.version === 2);
  if (unified !== undefined && controllers.every((c) => unified.controllers.has(c))) return 2;
  const v1 = mounts.filter((m) => m.version === 1);
  if (v1.length > 0 && controllers.every((c) => v1.some((m) => m.controllers.has(c)))) return 1;
  const missing = controllers.filter(
    (c) => !(unified?.controllers.has(c) ?? false) && !v1.some((m) => m.controllers.has(c)),
  );
  throw new FiredeckError(
    'unavailable',
    missing.length > 0
      ? `no cgroup hierarchy of this host offers the controller${missing.length > 1 ? 's' : ''} ${missing.join(', ')}`
      : `the cgroup controllers ${controllers.join(', ')} are split between cgroup v1 and v2 on this host`,
    {
      hint: 'mount the cgroup v2 hierarchy with these controllers (systemd.unified_cgroup_hierarchy=1), or set FIREDECK_FIRECRACKER_LIMITS=off',
      details: { controllers: [...controllers], procMounts },
    },
  );
}

/** Per-VM limits: a core per vCPU, the guest's memory plus the VMM's and its disk cache's headroom. */
export function vmCgroupLimits(version: CgroupVersion, vcpus: number, memoryMib: number): string[] {
  const quota = vcpus * CPU_PERIOD_US;
  const memory = (memoryMib + MEMORY_HEADROOM_MIB) * 1024 * 1024;
  return version === 2
    ? [`cpu.max=${quota} ${CPU_PERIOD_US}`, `memory.max=${memory}`]
    : [`cpu.cfs_period_us=${CPU_PERIOD_US}`, `cpu.cfs_quota_us=${quota}`, `memory.limit_in_bytes=${memory}`];
}

/** The controllers the limits above need. */
export const LIMIT_CONTROLLERS = ['cpu', 'memory'] as const;

/**
 * The directories the jailer makes for a VM (`<hierarchy>/<parent>/<id>`, one per v1 hierarchy that holds a
 * controller used, one in the unified hierarchy for v2), so that cleanup can remove them once the VM is gone.
 */
export function vmCgroupDirs(
  version: CgroupVersion,
  settings: readonly string[],
  parent: string,
  vmId: string,
  procMounts = '/proc/mounts',
): string[] {
  if (settings.length === 0) return [];
  const mounts = cgroupMounts(procMounts);
  if (version === 2) {
    const unified = mounts.find((m) => m.version === 2);
    return unified === undefined ? [] : [path.join(unified.dir, parent, vmId)];
  }
  const dirs = new Set<string>();
  for (const controller of new Set(settings.map(controllerOf))) {
    const mount = mounts.find((m) => m.version === 1 && m.controllers.has(controller));
    if (mount !== undefined) dirs.add(path.join(mount.dir, parent, vmId));
  }
  return [...dirs];
}
