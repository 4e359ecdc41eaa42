import path from 'node:path';
import { FiredeckError } from '../../../../src/shared/errors';
import type { DaemonConfig } from '../../config';
import { defaultFirecrackerKernel } from '../../images/firecrackerKernel';
import { userIds } from '../../system/users';
import type { TokenBucket } from './api';
import { checkCgroupSetting, checkParentCgroup } from './cgroups';
import { DEFAULT_SERIAL_RATE_LIMITER, type FirecrackerDriverOptions } from './driver';
import { DEFAULT_PARENT_CGROUP, type JailerOptions } from './jailer';

/** The unprivileged user Firecracker runs as under the jailer unless FIREDECK_FIRECRACKER_USER names another. */
export const DEFAULT_JAIL_USER = 'firedeck-fc';

/**
 * The Firecracker driver's settings from the environment (README: "firedeckd on a host"). By default Firecracker
 * runs under the jailer, as its production host guide asks; FIREDECK_FIRECRACKER_JAILER=off is the only way to
 * run it directly. A malformed value stops the daemon with an error naming the variable; a jail user that does
 * not exist only makes the driver unavailable (daemon.info says why), since hosts without Firecracker have none.
 */
export function firecrackerSettings(
  env: NodeJS.ProcessEnv,
  config: Pick<DaemonConfig, 'stateDir' | 'devicePrefix'>,
  passwdFile = '/etc/passwd',
): Omit<FirecrackerDriverOptions, 'log'> {
  const base = {
    binary: env.FIREDECK_FIRECRACKER_BINARY || 'firecracker',
    kernel: defaultFirecrackerKernel(env),
    serialRateLimiter: serialRateLimit(env.FIREDECK_FIRECRACKER_SERIAL_RATE_LIMIT),
  };
  if (!onOff(env, 'FIREDECK_FIRECRACKER_JAILER')) return { ...base, jailer: null };

  const userName = env.FIREDECK_FIRECRACKER_USER || DEFAULT_JAIL_USER;
  const ids = /^\d+:\d+$/.test(userName)
    ? { uid: Number(userName.split(':')[0]), gid: Number(userName.split(':')[1]) }
    : userIds(userName, passwdFile);
  const parentCgroup = env.FIREDECK_FIRECRACKER_CGROUP_PARENT || DEFAULT_PARENT_CGROUP;
  named('FIREDECK_FIRECRACKER_CGROUP_PARENT', () => checkParentCgroup(parentCgroup));
  const cgroups = (env.FIREDECK_FIRECRACKER_CGROUPS ?? '')
    .split(';')
    .map((s) => s.trim())
    .filter((s) => s !== '');
  for (const setting of cgroups) named('FIREDECK_FIRECRACKER_CGROUPS', () => checkCgroupSetting(setting));
  const chrootBaseDir = env.FIREDECK_FIRECRACKER_CHROOT_BASE || path.join(config.stateDir, 'jailer');
  if (!path.isAbsolute(chrootBaseDir)) {
    throw new FiredeckError(
      'invalid_params',
      `FIREDECK_FIRECRACKER_CHROOT_BASE must be an absolute path (got ${chrootBaseDir})`,
    );
  }
  const jailer: JailerOptions = {
    binary: env.FIREDECK_FIRECRACKER_JAILER_BINARY || 'jailer',
    uid: ids?.uid ?? -1,
    gid: ids?.gid ?? -1,
    chrootBaseDir,
    cgroupVersion: cgroupVersion(env.FIREDECK_FIRECRACKER_CGROUP_VERSION),
    limits: onOff(env, 'FIREDECK_FIRECRACKER_LIMITS'),
    cgroups,
    parentCgroup,
    netns: netnsMode(env.FIREDECK_FIRECRACKER_NETNS),
    netnsPrefix: config.devicePrefix,
  };
  return {
    ...base,
    jailer,
    unavailable:
      ids === null
        ? new FiredeckError('unavailable', `the jail user ${userName} does not exist`, {
            hint: `create it (useradd --system --no-create-home --shell /usr/sbin/nologin ${userName}), name another with FIREDECK_FIRECRACKER_USER (a user or uid:gid), or run Firecracker unjailed with FIREDECK_FIRECRACKER_JAILER=off`,
          })
        : undefined,
  };
}

function named(variable: string, check: () => void): void {
  try {
    check();
  } catch (err) {
    const e = FiredeckError.from(err);
    throw new FiredeckError(e.kind, `${variable}: ${e.message}`, { hint: e.hint, details: e.details });
  }
}

function onOff(env: NodeJS.ProcessEnv, name: string): boolean {
  const value = env[name];
  if (value === undefined || value === '' || value === 'on') return true;
  if (value === 'off') return false;
  throw new FiredeckError('invalid_params', `${name} must be on or off (got ${JSON.stringify(value)})`);
}

function cgroupVersion(value: string | undefined): JailerOptions['cgroupVersion'] {
  if (value === undefined || value === '' || value === 'auto') return 'auto';
  if (value === '1' || value === '2') return Number(value) as 1 | 2;
  throw new FiredeckError(
    'invalid_params',
    `FIREDECK_FIRECRACKER_CGROUP_VERSION must be auto, 1 or 2 (got ${JSON.stringify(value)})`,
  );
}

function netnsMode(value: string | undefined): JailerOptions['netns'] {
  if (value === undefined || value === '' || value === 'per-vm') return 'per-vm';
  if (value === 'host') return 'host';
  throw new FiredeckError(
    'invalid_params',
    `FIREDECK_FIRECRACKER_NETNS must be per-vm or host (got ${JSON.stringify(value)})`,
  );
}

function serialRateLimit(value: string | undefined): TokenBucket | null {
  if (value === undefined || value === '') return DEFAULT_SERIAL_RATE_LIMITER;
  if (value === 'off') return null;
  if (!/^\d{1,10}$/.test(value) || Number(value) < 1024) {
    throw new FiredeckError(
      'invalid_params',
      `FIREDECK_FIRECRACKER_SERIAL_RATE_LIMIT must be off or bytes per second, at least 1024 (got ${JSON.stringify(value)})`,
    );
  }
  return { ...DEFAULT_SERIAL_RATE_LIMITER, size: Number(value) };
}
