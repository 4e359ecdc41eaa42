import path from 'node:path';
import type { DriverName } from '../../src/shared/protocol/daemon';
import { parseGuestAllow, type GuestAllow } from './net/isolation';

/** How long each live state may last before the session times out (seconds). */
export type AuthTimeouts = Record<'pending' | 'vm_created' | 'ready' | 'awaiting_user_auth' | 'authenticating', number>;

export const DEFAULT_AUTH_TIMEOUTS: AuthTimeouts = {
  // Creating the VMs: a rootfs clone and a config drive each.
  pending: 300,
  // A browser VM's boot to Xvnc, Firefox and the agent; minutes without KVM.
  vm_created: 900,
  // The CLI's start until it opens its authorize URL (a Node CLI's first start is slow).
  ready: 600,
  // The person logging in.
  awaiting_user_auth: 900,
  // Capture, vault, the CLI VM's boot if it was just made, the write and its checks.
  authenticating: 900,
};

/** Where the daemon keeps things and how it names them. Flags override the environment, which overrides defaults. */
export interface DaemonConfig {
  socketPath: string;
  /** Persistent state: SQLite store, VM disks, images, vault key. */
  stateDir: string;
  /** Volatile state: per-VM sockets and pid files. */
  runDir: string;
  /** Unix group allowed to use the socket. */
  group: string;
  /** Prefix of every network device the daemon creates, so orphans can be found and only ours removed. */
  devicePrefix: string;
  bridge: string;
  /** IPv4 CIDR the guests' addresses are leased from; the first usable address is the bridge's. */
  cidr: string;
  /** The driver new VMs get unless they ask for one; `auto` (default) prefers Firecracker where usable. */
  driver?: 'auto' | DriverName;
  /** QEMU acceleration: `auto` uses KVM only when it is usable. */
  qemuAccel: 'auto' | 'kvm' | 'tcg';
  /**
   * `on` (default, also when unset): QEMU runs under `-sandbox on,…` as an unprivileged uid of its own per VM,
   * handed its disks, kernel and TAP as open files; `off`: as root, unconfined (development only).
   */
  qemuSandbox?: 'on' | 'off';
  /** Per-VM serial log cap in bytes; one rotated file of the same size is kept. */
  consoleLogMaxBytes: number;
  /** Browser VMs are reaped this long after their session ends. */
  browserVmTtlSeconds: number;
  /** Per-VM root disk: `clone` (cp --reflink=auto --sparse=always) or `overlay` (qcow2 on the golden image, QEMU). */
  rootfsMode: 'clone' | 'overlay';
  /** How long a graceful stop waits for the guest to power off before the VM is killed. */
  stopTimeoutSeconds: number;
  /** How often live VMs' CPU and memory are sampled (default 2000). */
  statsIntervalMs?: number;
  /** The image an auth session creates a user's CLI VM from, and the one its browser VM boots. */
  cliImage: string;
  browserImage: string;
  /** Seconds each live auth-session state may last (`state=seconds` pairs override the defaults). */
  authTimeouts: AuthTimeouts;
  /** The OpenID provider of the `selftest` login (reachable from browser VMs); unset: selftest sessions fail. */
  selftest?: { issuer: string; clientId: string };
  /** A vault key file the operator manages; unset: `<stateDir>/vault.key`, made on first start. */
  vaultKeyFile?: string;
  /**
   * Host ports guests may open (a proxy, DNS, …) besides replies to the host's own connections; the selftest
   * issuer's is added when it is set. Everything else from guests to the host is dropped.
   */
  guestAllow: GuestAllow[];
}

export const DEFAULT_STATE_DIR = '/var/lib/firedeck';
export const DEFAULT_RUN_DIR = '/run/firedeck';

export function defaultConfig(env: NodeJS.ProcessEnv = process.env): DaemonConfig {
  const runDir = env.FIREDECK_RUN_DIR ?? DEFAULT_RUN_DIR;
  return {
    socketPath: env.FIREDECK_SOCKET ?? path.join(runDir, 'firedeckd.sock'),
    stateDir: env.FIREDECK_STATE_DIR ?? DEFAULT_STATE_DIR,
    runDir,
    group: env.FIREDECK_GROUP ?? 'firedeck',
    devicePrefix: env.FIREDECK_DEVICE_PREFIX ?? 'fd',
    bridge: env.FIREDECK_BRIDGE ?? 'fdbr0',
    cidr: env.FIREDECK_CIDR ?? '10.213.0.0/24',
    driver: parseDriver(env.FIREDECK_DRIVER),
    qemuAccel: parseAccel(env.FIREDECK_QEMU_ACCEL),
    qemuSandbox: parseOnOff(env, 'FIREDECK_QEMU_SANDBOX'),
    consoleLogMaxBytes: positiveInt(env, 'FIREDECK_CONSOLE_LOG_MAX_BYTES', 8 * 1024 * 1024),
    browserVmTtlSeconds: positiveInt(env, 'FIREDECK_BROWSER_VM_TTL_SECONDS', 30 * 60),
    rootfsMode: parseRootfsMode(env.FIREDECK_ROOTFS_MODE),
    stopTimeoutSeconds: positiveInt(env, 'FIREDECK_STOP_TIMEOUT_SECONDS', 30),
    statsIntervalMs: positiveInt(env, 'FIREDECK_STATS_INTERVAL_MS', 2000),
    cliImage: imageName(env, 'FIREDECK_CLI_IMAGE', 'cli'),
    browserImage: imageName(env, 'FIREDECK_BROWSER_IMAGE', 'browser'),
    authTimeouts: parseAuthTimeouts(env.FIREDECK_AUTH_TIMEOUTS),
    ...(env.FIREDECK_SELFTEST_ISSUER
      ? {
          selftest: {
            issuer: parseIssuer(env.FIREDECK_SELFTEST_ISSUER),
            clientId: env.FIREDECK_SELFTEST_CLIENT_ID || 'firedeck-selftest',
          },
        }
      : {}),
    ...(env.FIREDECK_VAULT_KEY_FILE ? { vaultKeyFile: env.FIREDECK_VAULT_KEY_FILE } : {}),
    guestAllow: parseGuestAllow(env.FIREDECK_GUEST_ALLOW),
  };
}

function imageName(env: NodeJS.ProcessEnv, name: string, fallback: string): string {
  const value = env[name];
  if (value === undefined || value === '') return fallback;
  if (!/^[a-z0-9][a-z0-9-]{0,62}(@[0-9A-Za-z.-]{1,64})?$/.test(value)) {
    throw new Error(`${name} must be an image name or name@version (got ${JSON.stringify(value)})`);
  }
  return value;
}

/** `state=seconds` pairs, comma-separated, over DEFAULT_AUTH_TIMEOUTS. */
export function parseAuthTimeouts(value: string | undefined): AuthTimeouts {
  const out: AuthTimeouts = { ...DEFAULT_AUTH_TIMEOUTS };
  if (value === undefined || value.trim() === '') return out;
  for (const pair of value.split(',')) {
    const m = /^\s*([a-z_]+)=(\d{1,7})\s*$/.exec(pair);
    if (!m || !(m[1]! in out) || Number(m[2]) <= 0) {
      throw new Error(
        `FIREDECK_AUTH_TIMEOUTS must be state=seconds pairs for ${Object.keys(out).join(', ')} (got ${JSON.stringify(pair)})`,
      );
    }
    out[m[1] as keyof AuthTimeouts] = Number(m[2]);
  }
  return out;
}

function parseIssuer(value: string): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new Error(`FIREDECK_SELFTEST_ISSUER must be an http(s) URL (got ${JSON.stringify(value)})`);
  }
  if ((url.protocol !== 'http:' && url.protocol !== 'https:') || url.username || url.password) {
    throw new Error(`FIREDECK_SELFTEST_ISSUER must be an http(s) URL without credentials`);
  }
  return value;
}

function parseDriver(value: string | undefined): NonNullable<DaemonConfig['driver']> {
  if (value === undefined || value === '') return 'auto';
  if (value === 'auto' || value === 'firecracker' || value === 'qemu') return value;
  throw new Error(`FIREDECK_DRIVER must be auto, firecracker or qemu (got ${JSON.stringify(value)})`);
}

function parseAccel(value: string | undefined): DaemonConfig['qemuAccel'] {
  if (value === undefined || value === '') return 'auto';
  if (value === 'auto' || value === 'kvm' || value === 'tcg') return value;
  throw new Error(`FIREDECK_QEMU_ACCEL must be auto, kvm or tcg (got ${JSON.stringify(value)})`);
}

function parseOnOff(env: NodeJS.ProcessEnv, name: string): 'on' | 'off' {
  const value = env[name];
  if (value === undefined || value === '' || value === 'on') return 'on';
  if (value === 'off') return 'off';
  throw new Error(`${name} must be on or off (got ${JSON.stringify(value)})`);
}

function positiveInt(env: NodeJS.ProcessEnv, name: string, fallback: number): number {
  const value = env[name];
  if (value === undefined || value === '') return fallback;
  if (!/^\d{1,12}$/.test(value) || Number(value) <= 0) {
    throw new Error(`${name} must be a positive integer (got ${JSON.stringify(value)})`);
  }
  return Number(value);
}

function parseRootfsMode(value: string | undefined): DaemonConfig['rootfsMode'] {
  if (value === undefined || value === '') return 'clone';
  if (value === 'clone' || value === 'overlay') return value;
  throw new Error(`FIREDECK_ROOTFS_MODE must be clone or overlay (got ${JSON.stringify(value)})`);
}
