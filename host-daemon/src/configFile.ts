import fs from 'node:fs';
import path from 'node:path';
import { FiredeckError } from '../../src/shared/errors';
import { defaultConfig, parseAuthTimeouts, type DaemonConfig } from './config';
import { parseCidr } from './net/cidr';
import { parseGuestAllow } from './net/isolation';

/** Where the packaged daemon reads its settings unless `--config` or FIREDECK_CONFIG names another file. */
export const DEFAULT_CONFIG_FILE = '/etc/firedeck/firedeckd.conf';

/**
 * One setting of firedeckd: its key in the config file, the environment variable the daemon's readers use, and
 * what it means. Precedence is flags > environment > file > defaults: the file's values only fill in variables the
 * environment leaves unset (see applyConfigFile), so every reader — config.ts, the image builder — sees the same.
 */
export interface Setting {
  key: string;
  env: string;
  /** The command-line flag that overrides it, where there is one. */
  flag?: string;
  /** The default as written in the file; null when unset by default (then `doc` says what happens). */
  defaultValue: string | null;
  doc: string;
  /** Why a value is refused, or null when it is fine. */
  check: (value: string) => string | null;
}

const absolutePath = (v: string): string | null =>
  path.isAbsolute(v) && !v.split('/').includes('..') ? null : 'must be an absolute path without ".."';
const oneOf =
  (...allowed: string[]) =>
  (v: string): string | null =>
    allowed.includes(v) ? null : `must be one of ${allowed.join(', ')}`;
const positiveInteger = (v: string): string | null =>
  /^\d{1,12}$/.test(v) && Number(v) > 0 ? null : 'must be a positive whole number';
const matches =
  (re: RegExp, what: string) =>
  (v: string): string | null =>
    re.test(v) ? null : what;
const cidr = (v: string): string | null => {
  try {
    parseCidr(v);
    return null;
  } catch (err) {
    return FiredeckError.from(err).message;
  }
};

// Defaults come from the readers themselves (config.ts), so the documented file cannot drift from the code.
const d: DaemonConfig = defaultConfig({});

/** Every setting firedeckd reads, in the order the documented file lists them. */
export const SETTINGS: readonly Setting[] = [
  {
    key: 'state-dir',
    env: 'FIREDECK_STATE_DIR',
    flag: '--state-dir',
    defaultValue: d.stateDir,
    doc: 'Persistent state: the SQLite store, golden images, VM disks, the credential vault key (0750, root).',
    check: absolutePath,
  },
  {
    key: 'run-dir',
    env: 'FIREDECK_RUN_DIR',
    flag: '--run-dir',
    defaultValue: d.runDir,
    doc: "Volatile state: the daemon's socket, per-VM QMP/serial sockets and pid files (kept across restarts).",
    check: absolutePath,
  },
  {
    key: 'socket',
    env: 'FIREDECK_SOCKET',
    flag: '--socket',
    defaultValue: d.socketPath,
    doc: 'The RPC socket (mode 0660, group below). Defaults to firedeckd.sock inside run-dir.',
    check: absolutePath,
  },
  {
    key: 'group',
    env: 'FIREDECK_GROUP',
    defaultValue: d.group,
    doc: 'Unix group whose members may use the daemon (the socket is root:<group> 0660).',
    check: matches(/^[a-z_][a-z0-9_-]{0,31}$/, 'must be a unix group name'),
  },
  {
    key: 'bridge',
    env: 'FIREDECK_BRIDGE',
    defaultValue: d.bridge,
    doc: "The Linux bridge the VMs' TAP devices join; created on start with the first address of cidr.",
    check: matches(/^[A-Za-z0-9_.-]{1,15}$/, 'must be a network interface name of at most 15 characters'),
  },
  {
    key: 'cidr',
    env: 'FIREDECK_CIDR',
    defaultValue: d.cidr,
    doc: "IPv4 subnet the guests' addresses are leased from (/8 to /29); must not overlap the host's networks.",
    check: cidr,
  },
  {
    key: 'guest-allow',
    env: 'FIREDECK_GUEST_ALLOW',
    defaultValue: null,
    doc:
      'Host ports guests may open, as ip:port or ip:port/udp entries separated by commas (a proxy, DNS). ' +
      "Unset: none; guests reach the host only with replies to its connections (and the selftest issuer's port).",
    check: (v) => {
      try {
        parseGuestAllow(v);
        return null;
      } catch (err) {
        return FiredeckError.from(err).message;
      }
    },
  },
  {
    key: 'device-prefix',
    env: 'FIREDECK_DEVICE_PREFIX',
    defaultValue: d.devicePrefix,
    doc: 'Prefix of every TAP device the daemon makes (<prefix>tap<n>), so that only its own orphans are removed.',
    check: matches(/^[a-z][a-z0-9]{0,6}$/, 'must be 1 to 7 lower-case letters or digits, starting with a letter'),
  },
  {
    key: 'driver',
    env: 'FIREDECK_DRIVER',
    defaultValue: d.driver ?? 'auto',
    doc: 'The driver new VMs get unless they ask for one: auto (Firecracker where usable, else QEMU), firecracker or qemu.',
    check: oneOf('auto', 'firecracker', 'qemu'),
  },
  {
    key: 'qemu-accel',
    env: 'FIREDECK_QEMU_ACCEL',
    defaultValue: d.qemuAccel,
    doc: 'QEMU acceleration: auto (KVM when usable and the host is not itself a VM), kvm or tcg.',
    check: oneOf('auto', 'kvm', 'tcg'),
  },
  {
    key: 'qemu-sandbox',
    env: 'FIREDECK_QEMU_SANDBOX',
    defaultValue: d.qemuSandbox ?? 'on',
    doc:
      'on runs QEMU under -sandbox on (obsolete, elevateprivileges, spawn, resourcecontrol denied) as an ' +
      'unprivileged uid of its own per VM, handed its disks, kernel and TAP as open files; off runs it as root: development only.',
    check: oneOf('on', 'off'),
  },
  {
    key: 'rootfs-mode',
    env: 'FIREDECK_ROOTFS_MODE',
    defaultValue: d.rootfsMode,
    doc: "Each VM's root disk: clone (cp --reflink=auto --sparse=always of the golden image) or overlay (qcow2, QEMU only).",
    check: oneOf('clone', 'overlay'),
  },
  {
    key: 'stop-timeout-seconds',
    env: 'FIREDECK_STOP_TIMEOUT_SECONDS',
    defaultValue: String(d.stopTimeoutSeconds),
    doc: 'How long a graceful stop waits for the guest to power off before the VM is killed.',
    check: positiveInteger,
  },
  {
    key: 'browser-vm-ttl-seconds',
    env: 'FIREDECK_BROWSER_VM_TTL_SECONDS',
    defaultValue: String(d.browserVmTtlSeconds),
    doc: 'Browser VMs are destroyed this long after their auth session ends.',
    check: positiveInteger,
  },
  {
    key: 'console-log-max-bytes',
    env: 'FIREDECK_CONSOLE_LOG_MAX_BYTES',
    defaultValue: String(d.consoleLogMaxBytes),
    doc: "Cap of each VM's serial console log; one rotated file of the same size is kept.",
    check: positiveInteger,
  },
  {
    key: 'stats-interval-ms',
    env: 'FIREDECK_STATS_INTERVAL_MS',
    defaultValue: String(d.statsIntervalMs),
    doc: "How often running VMs' CPU and memory are sampled for the app.",
    check: positiveInteger,
  },
  {
    key: 'cli-image',
    env: 'FIREDECK_CLI_IMAGE',
    defaultValue: d.cliImage,
    doc: "The image an auth session creates a user's CLI VM from when they have none (name or name@version).",
    check: matches(/^[a-z0-9][a-z0-9-]{0,62}(@[0-9A-Za-z.-]{1,64})?$/, 'must be an image name or name@version'),
  },
  {
    key: 'browser-image',
    env: 'FIREDECK_BROWSER_IMAGE',
    defaultValue: d.browserImage,
    doc: "The image of auth sessions' throw-away browser VMs (name or name@version).",
    check: matches(/^[a-z0-9][a-z0-9-]{0,62}(@[0-9A-Za-z.-]{1,64})?$/, 'must be an image name or name@version'),
  },
  {
    key: 'auth-timeouts',
    env: 'FIREDECK_AUTH_TIMEOUTS',
    defaultValue: null,
    doc:
      'Seconds an auth session may stay in a state, as state=seconds pairs separated by commas. Unset: ' +
      Object.entries(d.authTimeouts)
        .map(([k, v]) => `${k}=${v}`)
        .join(','),
    check: (v) => {
      try {
        parseAuthTimeouts(v);
        return null;
      } catch (err) {
        return (err as Error).message;
      }
    },
  },
  {
    key: 'selftest-issuer',
    env: 'FIREDECK_SELFTEST_ISSUER',
    defaultValue: null,
    doc: 'The OpenID provider (issuer URL, reachable from browser VMs) of the selftest login. Unset: selftest fails.',
    check: (v) => (/^https?:\/\/[^\s@]+$/.test(v) ? null : 'must be an http(s) URL without credentials'),
  },
  {
    key: 'selftest-client-id',
    env: 'FIREDECK_SELFTEST_CLIENT_ID',
    defaultValue: 'firedeck-selftest',
    doc: "The selftest login's client id at that provider (a public client with PKCE).",
    check: matches(/^[A-Za-z0-9._-]{1,128}$/, 'must be 1-128 letters, digits, ".", "_" or "-"'),
  },
  {
    key: 'vault-key-file',
    env: 'FIREDECK_VAULT_KEY_FILE',
    defaultValue: null,
    doc: 'A credential vault key file you manage (32 random bytes, 0600 root). Unset: <state-dir>/vault.key, made on first start.',
    check: absolutePath,
  },
  {
    key: 'cache-dir',
    env: 'FIREDECK_CACHE_DIR',
    defaultValue: '/var/cache/firedeck',
    doc: 'Image build layers (Debian base and npm tarballs) and build work dirs.',
    check: absolutePath,
  },
  {
    key: 'images-dir',
    env: 'FIREDECK_IMAGES_DIR',
    defaultValue: null,
    doc: 'Directory of image recipes (<name>/recipe.json). Unset: the images/ directory shipped beside firedeckd.',
    check: absolutePath,
  },
  {
    key: 'firecracker-kernel',
    env: 'FIREDECK_FIRECRACKER_KERNEL',
    defaultValue: null,
    doc: 'An uncompressed vmlinux recorded with each image build, needed by the Firecracker driver. Unset: none.',
    check: absolutePath,
  },
  {
    key: 'firecracker-binary',
    env: 'FIREDECK_FIRECRACKER_BINARY',
    defaultValue: 'firecracker',
    doc: 'The Firecracker binary (a name on PATH or an absolute path); it must be release 1.14.2 or later.',
    check: matches(/^[A-Za-z0-9_./-]{1,4096}$/, 'must be a program name or a path'),
  },
  {
    key: 'firecracker-jailer',
    env: 'FIREDECK_FIRECRACKER_JAILER',
    defaultValue: 'on',
    doc: 'on runs Firecracker under its jailer (uid/gid, chroot, cgroups); off runs it directly as root: development only.',
    check: oneOf('on', 'off'),
  },
  {
    key: 'firecracker-jailer-binary',
    env: 'FIREDECK_FIRECRACKER_JAILER_BINARY',
    defaultValue: 'jailer',
    doc: 'The jailer binary, from the same Firecracker release.',
    check: matches(/^[A-Za-z0-9_./-]{1,4096}$/, 'must be a program name or a path'),
  },
  {
    key: 'firecracker-user',
    env: 'FIREDECK_FIRECRACKER_USER',
    defaultValue: 'firedeck-fc',
    doc: 'The unprivileged user (or uid:gid) Firecracker runs as under the jailer; the package creates firedeck-fc.',
    check: matches(/^([a-z_][a-z0-9_-]{0,31}|\d{1,10}:\d{1,10})$/, 'must be a user name or uid:gid'),
  },
  {
    key: 'firecracker-chroot-base',
    env: 'FIREDECK_FIRECRACKER_CHROOT_BASE',
    defaultValue: null,
    doc: 'Where the jails go; on the filesystem of the VM disks (they are hard-linked in). Unset: <state-dir>/jailer.',
    check: absolutePath,
  },
  {
    key: 'firecracker-netns',
    env: 'FIREDECK_FIRECRACKER_NETNS',
    defaultValue: 'per-vm',
    doc: "per-vm gives each jailed VM a network namespace with its TAP inside; host keeps VMs in the host's.",
    check: oneOf('per-vm', 'host'),
  },
  {
    key: 'firecracker-limits',
    env: 'FIREDECK_FIRECRACKER_LIMITS',
    defaultValue: 'on',
    doc: "on sets each jailed VM's CPU and memory cgroup limits from its size; off sets none.",
    check: oneOf('on', 'off'),
  },
  {
    key: 'firecracker-cgroups',
    env: 'FIREDECK_FIRECRACKER_CGROUPS',
    defaultValue: null,
    doc: 'Further <file>=<value> cgroup settings for every jailed VM, separated by ";" (one "=" each). Unset: none.',
    check: matches(/^[A-Za-z0-9_.]+=[^=;]+(;[A-Za-z0-9_.]+=[^=;]+)*$/, 'must be <file>=<value> pairs separated by ;'),
  },
  {
    key: 'firecracker-cgroup-parent',
    env: 'FIREDECK_FIRECRACKER_CGROUP_PARENT',
    defaultValue: 'firedeck',
    doc: "The cgroup (a relative path, no '..') under which each jailed VM's cgroup is made.",
    check: matches(/^(?!\/)(?!.*(^|\/)\.\.(\/|$))[A-Za-z0-9_./-]{1,255}$/, 'must be a relative cgroup path without ..'),
  },
  {
    key: 'firecracker-cgroup-version',
    env: 'FIREDECK_FIRECRACKER_CGROUP_VERSION',
    defaultValue: 'auto',
    doc: 'auto picks the cgroup hierarchy that holds the controllers (from /proc/mounts); or 1 or 2.',
    check: oneOf('auto', '1', '2'),
  },
  {
    key: 'firecracker-serial-rate-limit',
    env: 'FIREDECK_FIRECRACKER_SERIAL_RATE_LIMIT',
    defaultValue: '65536',
    doc: 'Bytes per second of serial output Firecracker passes (after a 1 MiB burst; release 1.16+), or off.',
    check: (v) => (v === 'off' || (/^\d{1,10}$/.test(v) && Number(v) >= 1024) ? null : 'must be off or at least 1024'),
  },
];

/** A value the config file set, with the line it came from. */
export interface FileValue {
  value: string;
  line: number;
}

/** What applyConfigFile did: the file it read (if any), its values, and which variables the environment already had. */
export interface ConfigLayer {
  /** The command line without `--config PATH`. */
  argv: string[];
  file: string | null;
  values: ReadonlyMap<string, FileValue>;
  /** Settings the environment set before the file was read (they win over the file). */
  fromEnvironment: ReadonlySet<string>;
}

/**
 * Parses the text of a config file: `key = value` lines, `#` comments (whole lines, or after whitespace), blank
 * lines. Unknown keys, repeated keys, empty and invalid values are refused, all of them at once, each naming the
 * file, the line and the key.
 */
export function parseConfigFile(text: string, file: string): Map<string, FileValue> {
  const values = new Map<string, FileValue>();
  const problems: string[] = [];
  const known = new Map(SETTINGS.map((s) => [s.key, s]));
  text.split('\n').forEach((raw, index) => {
    const line = index + 1;
    const content = raw.replace(/(^|\s)#.*$/, '').trim();
    if (content === '') return;
    const eq = content.indexOf('=');
    if (eq < 0) {
      problems.push(`${file}:${line}: expected "key = value", got ${JSON.stringify(content)}`);
      return;
    }
    const key = content.slice(0, eq).trim();
    const value = content.slice(eq + 1).trim();
    const setting = known.get(key);
    if (setting === undefined) {
      const near = closestKey(key);
      problems.push(
        `${file}:${line}: unknown key ${JSON.stringify(key)}${near ? ` (did you mean ${near}?)` : ''}; known keys: ${SETTINGS.map((s) => s.key).join(', ')}`,
      );
      return;
    }
    const earlier = values.get(key);
    if (earlier !== undefined) {
      problems.push(`${file}:${line}: ${key} is set twice (first on line ${earlier.line})`);
      return;
    }
    if (value === '') {
      problems.push(`${file}:${line}: ${key} has no value (delete the line to use the default)`);
      return;
    }
    const why = setting.check(value);
    if (why !== null) {
      problems.push(`${file}:${line}: ${key}: ${why} (got ${JSON.stringify(value)})`);
      return;
    }
    values.set(key, { value, line });
  });
  if (problems.length > 0) {
    throw new FiredeckError(
      'invalid_params',
      problems.length === 1 ? problems[0]! : `${file} has ${problems.length} errors:\n${problems.join('\n')}`,
      {
        hint: `fix ${file} (every setting and its default: firedeckd config default)`,
        details: { file, problems },
      },
    );
  }
  return values;
}

/**
 * Reads the config file and puts its values into `env` where the environment has not set them, so that flags
 * (applied later by each command) > environment > file > defaults. The file is `--config PATH` (taken out of
 * argv), else FIREDECK_CONFIG, else /etc/firedeck/firedeckd.conf; only the default file may be absent.
 */
export function applyConfigFile(
  argv: string[],
  env: NodeJS.ProcessEnv,
  defaultFile: string = DEFAULT_CONFIG_FILE,
): ConfigLayer {
  const { rest, configFlag } = takeConfigFlag(argv);
  const explicit = configFlag ?? (env.FIREDECK_CONFIG || undefined);
  const file = explicit ?? defaultFile;
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (explicit === undefined && code === 'ENOENT') {
      return { argv: rest, file: null, values: new Map(), fromEnvironment: environmentSettings(env) };
    }
    throw new FiredeckError('not_found', `cannot read the config file ${file}: ${(err as Error).message}`, {
      hint:
        explicit === undefined
          ? `make ${file} readable, or remove it to use the defaults`
          : 'pass --config (or FIREDECK_CONFIG) the path of an existing file',
      details: { file },
    });
  }
  const values = parseConfigFile(text, file);
  const fromEnvironment = environmentSettings(env);
  for (const setting of SETTINGS) {
    const v = values.get(setting.key);
    if (v !== undefined && !fromEnvironment.has(setting.key)) env[setting.env] = v.value;
  }
  return { argv: rest, file, values, fromEnvironment };
}

/** The documented default config file: every setting commented out at its default. */
export function renderDefaultConfigFile(): string {
  const lines = [
    '# firedeckd configuration. Read at start by every firedeckd command (serve, dial-stdio, doctor, ...).',
    '#',
    '# Format: one "key = value" per line; "#" starts a comment. Unknown keys are refused, naming this file and',
    '# the line. Precedence: command-line flags > environment variables (FIREDECK_*) > this file > defaults.',
    '# Every line below is commented out and shows the default; uncomment and edit to change a setting, then',
    '#   systemctl restart firedeckd   (running VMs keep running and are re-adopted)',
    '# Check with: firedeckd doctor; see the effective values with: firedeckd config show',
  ];
  for (const s of SETTINGS) {
    lines.push('', ...wrap(s.doc).map((l) => `# ${l}`));
    const also = [s.flag, s.env].filter(Boolean).join(', ');
    lines.push(`# (${also})`);
    lines.push(s.defaultValue === null ? `#${s.key} =` : `#${s.key} = ${s.defaultValue}`);
  }
  return `${lines.join('\n')}\n`;
}

/** The effective value of every setting and where it came from, for `firedeckd config show` and the doctor. */
export function describeSettings(
  layer: ConfigLayer,
  env: NodeJS.ProcessEnv,
): { key: string; value: string | null; source: string }[] {
  return SETTINGS.map((s) => {
    const fileValue = layer.values.get(s.key);
    if (layer.fromEnvironment.has(s.key)) return { key: s.key, value: env[s.env] ?? null, source: s.env };
    if (fileValue !== undefined)
      return { key: s.key, value: fileValue.value, source: `${layer.file}:${fileValue.line}` };
    // Without a socket of its own, the socket follows the run dir (as in defaultConfig).
    if (s.key === 'socket') return { key: s.key, value: defaultConfig(env).socketPath, source: 'default (in run-dir)' };
    return { key: s.key, value: s.defaultValue, source: 'default' };
  });
}

function environmentSettings(env: NodeJS.ProcessEnv): Set<string> {
  return new Set(SETTINGS.filter((s) => env[s.env] !== undefined && env[s.env] !== '').map((s) => s.key));
}

/** `--config PATH` or `--config=PATH` anywhere before a `--`. */
function takeConfigFlag(argv: string[]): { rest: string[]; configFlag: string | undefined } {
  const rest: string[] = [];
  let configFlag: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--') {
      rest.push(...argv.slice(i));
      break;
    }
    if (a === '--config' || a.startsWith('--config=')) {
      const value = a === '--config' ? argv[++i] : a.slice('--config='.length);
      if (value === undefined || value === '') {
        throw new FiredeckError('invalid_params', '--config needs the path of a config file');
      }
      configFlag = value;
      continue;
    }
    rest.push(a);
  }
  return { rest, configFlag };
}

function closestKey(key: string): string | null {
  let best: { key: string; distance: number } | null = null;
  for (const s of SETTINGS) {
    const distance = editDistance(key, s.key);
    if (best === null || distance < best.distance) best = { key: s.key, distance };
  }
  return best !== null && best.distance <= Math.max(2, Math.floor(key.length / 4)) ? best.key : null;
}

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      cur[j] = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    prev = cur;
  }
  return prev[b.length]!;
}

function wrap(text: string, width = 110): string[] {
  const out: string[] = [];
  let line = '';
  for (const word of text.split(' ')) {
    if (line !== '' && line.length + 1 + word.length > width) {
      out.push(line);
      line = word;
    } else line = line === '' ? word : `${line} ${word}`;
  }
  if (line !== '') out.push(line);
  return out;
}
