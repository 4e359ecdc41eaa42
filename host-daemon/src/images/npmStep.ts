import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { FiredeckError } from '../../../src/shared/errors';
import type { NpmInstalledPackage } from '../../../src/shared/protocol/image';
import { runCommand } from './command';
import { npmGlobalSources, type LoadedRecipe } from './recipe';
import { npmClientConfig } from './sources';

/**
 * The throw-away identity the npm step runs as: no account, no home, no groups, far from the ranges Debian,
 * systemd (DynamicUser) and /etc/subuid hand out. Nothing of npm's, nor any package's install script, runs as
 * host root.
 */
export const NPM_STEP_UID = 2_000_000_000;

/** Inside the sandbox: the prefix (the image's /usr/local), npm's cache, local tarballs, HOME. */
const BOX = '/tmp/npm';
const BOX_PREFIX = `${BOX}/usr/local`;

/**
 * Run as root in fresh mount and PID namespaces, then drops to NPM_STEP_UID for the command. The host's /tmp,
 * /var/tmp, /run/lock and /dev are replaced by private ones (/dev holds null, zero, full, random, urandom and tty
 * only); the command sees the prefix, the cache and the local tarballs (read-only) bind-mounted under /tmp/npm.
 * When the command exits, the PID namespace takes every process a script left behind with it.
 * Arguments: $0 an empty dir to assemble the new /tmp in, $1 prefix, $2 cache, $3 local tarballs, then the argv.
 */
const SANDBOX_SCRIPT = [
  'set -e',
  'umask 022',
  'S="$0"',
  'mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs "$S"',
  `mkdir -p "$S/npm/usr/local" "$S/npm/cache" "$S/npm/local" "$S/npm/home"`,
  `chown ${NPM_STEP_UID}:${NPM_STEP_UID} "$S/npm/home"`,
  'mount --bind "$1" "$S/npm/usr/local"',
  'mount --bind "$2" "$S/npm/cache"',
  'mount --bind "$3" "$S/npm/local"',
  'mount -o remount,bind,ro "$S/npm/local"',
  'mount --move "$S" /tmp',
  'for d in /var/tmp /run/lock; do if [ -d $d ]; then mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs $d; fi; done',
  'mount -t tmpfs -o mode=0755,nosuid,noexec tmpfs /dev',
  'mknod -m 0666 /dev/null c 1 3; mknod -m 0666 /dev/zero c 1 5; mknod -m 0666 /dev/full c 1 7',
  'mknod -m 0666 /dev/random c 1 8; mknod -m 0666 /dev/urandom c 1 9; mknod -m 0666 /dev/tty c 5 0',
  'ln -s /proc/self/fd /dev/fd; ln -s fd/0 /dev/stdin; ln -s fd/1 /dev/stdout; ln -s fd/2 /dev/stderr',
  'mkdir -m 1777 /dev/shm',
  `cd ${BOX}/home`,
  'shift 3',
  `exec setpriv --reuid=${NPM_STEP_UID} --regid=${NPM_STEP_UID} --clear-groups --no-new-privs --inh-caps=-all --bounding-set=-all -- "$@"`,
].join('\n');

export interface NpmSandboxDirs {
  /** An empty dir the sandbox assembles its /tmp in. */
  mountpoint: string;
  /** The image's /usr/local, owned by NPM_STEP_UID. */
  prefix: string;
  /** npm's cache, owned by NPM_STEP_UID. */
  cache: string;
  /** Local tarballs, readable by anyone. */
  local: string;
}

/** The argv running `argv` as NPM_STEP_UID in the sandbox (see SANDBOX_SCRIPT). */
export function npmSandboxArgv(dirs: NpmSandboxDirs, argv: readonly string[]): string[] {
  return [
    'unshare',
    '--mount',
    '--propagation',
    'private',
    '--pid',
    '--fork',
    '--mount-proc',
    '--kill-child',
    '--',
    '/bin/sh',
    '-c',
    SANDBOX_SCRIPT,
    dirs.mountpoint,
    dirs.prefix,
    dirs.cache,
    dirs.local,
    ...argv,
  ];
}

export interface NpmStepResult {
  /** The tree that goes into the image as /usr/local (prefix's parent's parent: `<dir>/usr/local`). */
  root: string;
  /** The recipe's globals as installed, with their integrity. */
  globals: NpmInstalledPackage[];
  /** Everything they pulled in (platform packages, dependencies). */
  dependencies: NpmInstalledPackage[];
}

/**
 * Installs the recipe's npm globals into `<work>/npm/root/usr/local` with the host's npm, as NPM_STEP_UID in the
 * sandbox: packages' install scripts run (Claude Code's postinstall puts its native binary in place), but as
 * nobody in particular, without host devices, host /tmp or any capability. Then lists what npm installed, with
 * the integrity the registry gives for each version (what npm checked each tarball against); local tarballs
 * get their own sha512.
 */
export async function installNpmGlobals(
  loaded: LoadedRecipe,
  cacheDir: string,
  work: string,
  signal: AbortSignal | undefined,
  log: (line: string) => void,
): Promise<NpmStepResult> {
  const npm = hostNpm();
  requireNoAccount(NPM_STEP_UID);
  const { env: carried } = await npmClientConfig();
  const base = path.join(work, 'npm');
  const root = path.join(base, 'root');
  const dirs: NpmSandboxDirs = {
    mountpoint: path.join(base, 'mnt'),
    prefix: path.join(root, 'usr', 'local'),
    cache: ownedNpmCache(cacheDir),
    local: path.join(base, 'local'),
  };
  fs.mkdirSync(dirs.mountpoint, { recursive: true });
  fs.mkdirSync(dirs.prefix, { recursive: true });
  fs.chownSync(dirs.prefix, NPM_STEP_UID, NPM_STEP_UID);
  fs.mkdirSync(dirs.local, { recursive: true, mode: 0o755 });
  fs.chmodSync(dirs.local, 0o755);

  const env: NodeJS.ProcessEnv = {
    ...carried,
    PATH: '/usr/local/bin:/usr/bin:/bin',
    HOME: `${BOX}/home`,
    LANG: 'C.UTF-8',
    npm_config_cache: `${BOX}/cache`,
    npm_config_update_notifier: 'false',
  };
  const run = (argv: readonly string[], capture = false, quiet = false): Promise<string> =>
    runCommand(npmSandboxArgv(dirs, argv), {
      step: 'npm',
      env,
      signal,
      capture,
      onLine: quiet ? undefined : log,
    });

  // Local tarballs are copied where the throw-away user can read them; the registry specs go as written.
  const localIntegrity = new Map<string, string>();
  const specs: string[] = [];
  const registryNames = new Set<string>();
  for (const [i, source] of npmGlobalSources(loaded.recipe, loaded.dir).entries()) {
    if (source.registry) {
      specs.push(source.spec);
      registryNames.add(source.spec.slice(0, source.spec.lastIndexOf('@')));
      continue;
    }
    const name = `${i}-${path.basename(source.file)}`;
    const content = fs.readFileSync(source.file);
    fs.writeFileSync(path.join(dirs.local, name), content, { mode: 0o644 });
    specs.push(`file:${BOX}/local/${name}`);
    localIntegrity.set(name, `sha512-${crypto.createHash('sha512').update(content).digest('base64')}`);
  }

  log(`installing ${loaded.recipe.npmGlobals.join(' ')} as uid ${NPM_STEP_UID} (no host root, no host /dev)`);
  await run([
    npm,
    'install',
    '--global',
    `--prefix=${BOX_PREFIX}`,
    '--no-audit',
    '--no-fund',
    '--loglevel=http',
    ...specs,
  ]);

  // The install's PID namespace is gone, and with it every process a script started: what is listed now is
  // what npm left.
  const tree = JSON.parse(
    await run([npm, 'ls', '--global', `--prefix=${BOX_PREFIX}`, '--json', '--long', '--all'], true, true),
  ) as NpmLsNode;
  const globals: InstalledEntry[] = [];
  const dependencies: InstalledEntry[] = [];
  for (const [key, node] of Object.entries(tree.dependencies ?? {})) {
    if (!node.version) continue;
    globals.push({ key, name: node.name ?? key, version: node.version, local: !registryNames.has(key) });
    collect(node.dependencies, dependencies);
  }
  const fromRegistry = [...globals.filter((g) => !g.local), ...dependencies];
  const integrity = await registryIntegrity(
    run,
    npm,
    fromRegistry.map((e) => `${e.name}@${e.version}`),
  );
  const localByName = await localTarballNames(dirs.local, localIntegrity, signal);
  const record = (e: InstalledEntry): NpmInstalledPackage => ({
    name: e.key,
    version: e.version,
    integrity: e.local ? (localByName.get(e.key) ?? null) : (integrity.get(`${e.name}@${e.version}`) ?? null),
  });
  const result = { root, globals: globals.map(record), dependencies: dependencies.map(record) };
  for (const p of [...result.globals, ...result.dependencies]) {
    log(`installed ${p.name}@${p.version} ${p.integrity ?? '(no integrity known)'}`);
  }
  return result;
}

interface NpmLsNode {
  name?: string;
  version?: string;
  dependencies?: Record<string, NpmLsNode>;
}

interface InstalledEntry {
  /** Where it is installed (an alias for platform packages, e.g. @openai/codex-linux-x64). */
  key: string;
  /** Its name in the registry. */
  name: string;
  version: string;
  local: boolean;
}

function collect(deps: Record<string, NpmLsNode> | undefined, into: InstalledEntry[]): void {
  for (const [key, node] of Object.entries(deps ?? {})) {
    // Optional dependencies for other platforms are listed without a version: not installed.
    if (!node.version) continue;
    into.push({ key, name: node.name ?? key, version: node.version, local: false });
    collect(node.dependencies, into);
  }
}

/** `dist.integrity` of each `name@version`, asked of the registry in one sandboxed shell. */
async function registryIntegrity(
  run: (argv: readonly string[], capture: boolean, quiet: boolean) => Promise<string>,
  npm: string,
  specs: string[],
): Promise<Map<string, string>> {
  const unique = [...new Set(specs)];
  const result = new Map<string, string>();
  if (unique.length === 0) return result;
  const out = await run(
    [
      '/bin/sh',
      '-c',
      'npm="$1"; shift; for s; do v=$("$npm" view "$s" dist.integrity 2>/dev/null) || v=; printf "%s\\t%s\\n" "$s" "$v"; done',
      'sh',
      npm,
      ...unique,
    ],
    true,
    true,
  );
  for (const line of out.split('\n')) {
    const [spec, value] = line.split('\t');
    if (spec && value && /^sha(256|384|512)-[A-Za-z0-9+/=]+$/.test(value.trim())) result.set(spec, value.trim());
  }
  return result;
}

/** The package name inside each local tarball, mapped to the tarball's integrity. */
async function localTarballNames(
  dir: string,
  integrity: Map<string, string>,
  signal: AbortSignal | undefined,
): Promise<Map<string, string>> {
  const result = new Map<string, string>();
  for (const [file, value] of integrity) {
    const text = await runCommand(['tar', '-xzOf', path.join(dir, file), 'package/package.json'], {
      step: 'npm',
      signal,
      capture: true,
    });
    const name = (JSON.parse(text) as { name?: unknown }).name;
    if (typeof name === 'string') result.set(name, value);
  }
  return result;
}

/** The host's npm by absolute path, which the throw-away user must be able to run. */
function hostNpm(): string {
  const dirs = (process.env.PATH ?? '').split(':').concat(['/usr/local/bin', '/usr/bin', '/bin']);
  const found = dirs.map((d) => path.join(d, 'npm')).find((p) => isFile(p));
  if (found === undefined) {
    throw new FiredeckError('unavailable', 'image builds with npm globals need npm, which is not installed', {
      hint: 'apt-get install npm (or install Node.js with npm system-wide)',
    });
  }
  const real = fs.realpathSync(found);
  for (let p = real; p !== path.dirname(p); p = path.dirname(p)) {
    const mode = fs.statSync(p).mode;
    const needed = p === real ? 0o005 : 0o001;
    if ((mode & needed) !== needed) {
      throw new FiredeckError(
        'unavailable',
        `npm at ${real} cannot be run by other users (${p} is mode ${(mode & 0o777).toString(8)}); the image build runs npm as an unprivileged user`,
        { hint: 'install Node.js and npm system-wide (e.g. under /usr or /usr/local), not in a home directory' },
      );
    }
  }
  return found;
}

function isFile(p: string): boolean {
  try {
    return fs.statSync(p).isFile();
  } catch {
    return false;
  }
}

/** The uid must belong to no account or group: it must own nothing but what the npm step gives it. */
function requireNoAccount(uid: number): void {
  for (const file of ['/etc/passwd', '/etc/group']) {
    let text = '';
    try {
      text = fs.readFileSync(file, 'utf8');
    } catch {
      continue;
    }
    const taken = text.split('\n').find((line) => line.split(':')[2] === String(uid));
    if (taken !== undefined) {
      throw new FiredeckError(
        'conflict',
        `the npm step's throw-away id ${uid} belongs to ${file.endsWith('group') ? 'group' : 'user'} ${taken.split(':')[0]}`,
        { hint: `the image build runs npm as uid ${uid}, which must be unused; remove that entry from ${file}` },
      );
    }
  }
}

/**
 * `<cacheDir>/npm-step-cache`, created for NPM_STEP_UID and written by nothing else (not the `npm-cache/` that
 * builds running npm as root used: root's npm would leave entries there the throw-away user cannot update). One
 * with another owner is removed and made anew: the cache is only a download cache, npm checks what it reads.
 */
function ownedNpmCache(cacheDir: string): string {
  const dir = path.join(cacheDir, 'npm-step-cache');
  let st: fs.Stats | null = null;
  try {
    st = fs.lstatSync(dir);
  } catch {
    // Made below.
  }
  if (st !== null && (!st.isDirectory() || st.uid !== NPM_STEP_UID || st.gid !== NPM_STEP_UID)) {
    fs.rmSync(dir, { recursive: true, force: true });
    st = null;
  }
  if (st === null) {
    fs.mkdirSync(dir, { mode: 0o700 });
    fs.chownSync(dir, NPM_STEP_UID, NPM_STEP_UID);
  }
  return dir;
}
