// The part of the jailer double that runs before the exec: every check and every change the real jailer makes
// between its start and `exec`, in its order, each following the named file of firecracker-microvm/firecracker:
//   src/jailer/src/main.rs      arguments, --help/--version, the chroot directory made before Env::run
//   src/jailer/src/env.rs       Env::new (validation, canonical paths, cgroup parsing) and Env::run (copy of the
//                               exec file, netns, cgroups, jail folders, device nodes)
//   src/jailer/src/cgroup.rs    /proc/mounts parsing, v1/v2 hierarchies, controllers, subtree_control, attach
//   src/utils/src/arg_parser.rs the shared argument parser (argParser.mjs)
// It prints, for jailer.sh to eval, where the process goes next (the chroot, the pid file, daemonize,
// new-pid-ns) and the command that stands in for "chroot, drop to uid/gid, exec /<exec-file-name>". It fails as
// the jailer does: its error on stderr, exit code 1.
//
// Arguments of the double itself, before the jailer's own (jailer.sh passes the first, a wrapper the rest):
//   --double-shell-pid PID      the pid that becomes Firecracker's ancestor (attached to the cgroups)
//   --double-proc-mounts FILE   read instead of /proc/mounts (cgroup.rs takes it as a parameter for its tests)
//   --double-version X.Y.Z      what --version prints (default: the vendored spec's version)
import fs from 'node:fs';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { ArgParseError, instanceIdProblem, parseArgs } from './argParser.mjs';
import { FirecrackerSpec } from './spec.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));

class JailerError extends Error {}

// main.rs build_arg_parser.
const ARGUMENTS = {
  id: { takesValue: true, required: true },
  'exec-file': { takesValue: true, required: true },
  uid: { takesValue: true, required: true },
  gid: { takesValue: true, required: true },
  'chroot-base-dir': { takesValue: true, default: '/srv/jailer' },
  netns: { takesValue: true },
  daemonize: {},
  'new-pid-ns': {},
  cgroup: { takesValue: true, multiple: true },
  'resource-limit': { takesValue: true, multiple: true },
  'cgroup-version': { takesValue: true, default: '1' },
  'parent-cgroup': { takesValue: true },
};

// env.rs: the folders made (0700, owned by uid:gid) and the device nodes created inside the jail.
const FOLDER_HIERARCHY = ['/', '/dev', '/dev/net', '/run'];
const DEVICES = [
  { path: '/dev/net/tun', major: 10, minor: 200, required: true },
  { path: '/dev/kvm', major: 10, minor: 232, required: true },
  { path: '/dev/urandom', major: 1, minor: 9, required: false },
];
const NSFS_MAGIC = 0x6e736673;

function main(argv) {
  const own = { shellPid: null, procMounts: '/proc/mounts', version: null };
  while (argv[0]?.startsWith('--double-')) {
    const [flag, v] = [argv.shift(), argv.shift()];
    if (v === undefined) throw new JailerError(`${flag} needs a value`);
    if (flag === '--double-shell-pid') own.shellPid = Number(v);
    else if (flag === '--double-proc-mounts') own.procMounts = v;
    else if (flag === '--double-version') own.version = v;
    else throw new JailerError(`unknown double flag ${flag}`);
  }
  let parsed;
  try {
    parsed = parseArgs(argv, ARGUMENTS);
  } catch (err) {
    if (err instanceof ArgParseError) throw new JailerError(`Failed to parse arguments: ${err.message}`);
    throw err;
  }
  const version =
    own.version ??
    new FirecrackerSpec(path.resolve(here, '../../../host-daemon/src/vms/firecracker/firecracker.yaml')).version;
  // main.rs: println!("Jailer v{}\n", JAILER_VERSION), then exit 0 (--help adds the usage, left out here).
  if (parsed.help || parsed.version) return { print: `Jailer v${version}\n\n` };
  const value = (name) => parsed.values.get(name);

  // ---- Env::new
  const id = value('id');
  const idProblem = instanceIdProblem(id);
  if (idProblem !== null) throw new JailerError(`Invalid instance ID: ${idProblem}`);
  // validate_exec_file: canonicalize() resolves every symlink; the chroot is named after the target's file name.
  const execFile = canonicalize(value('exec-file'));
  if (!fs.statSync(execFile).isFile()) throw new JailerError(`${execFile} is not a file`);
  const execName = path.basename(execFile);
  const chrootBase = canonicalize(value('chroot-base-dir'));
  if (!fs.statSync(chrootBase).isDirectory()) throw new JailerError(`${chrootBase} is not a directory`);
  const chrootDir = path.join(chrootBase, execName, id, 'root');
  const uid = parseU32(value('uid'), 'uid');
  const gid = parseU32(value('gid'), 'gid');
  const netns = value('netns') ?? null;
  const daemonize = parsed.values.has('daemonize');
  const newPidNs = parsed.values.has('new-pid-ns');

  const parentCgroup = value('parent-cgroup') ?? execName;
  if (hasSpecialComponent(parentCgroup)) {
    throw new JailerError("Parent cgroup path is invalid. Path should not be absolute or contain '..' or '.'");
  }
  const cgroupVersionText = value('cgroup-version');
  const cgroupVersion =
    /^\d{1,3}$/.test(cgroupVersionText) && Number(cgroupVersionText) <= 255 ? Number(cgroupVersionText) : NaN;
  if (Number.isNaN(cgroupVersion)) throw new JailerError(`${cgroupVersionText} is an invalid cgroup version specifier`);
  const cgroupArgs = value('cgroup') ?? [];
  let cgroupConf = null;
  if (cgroupArgs.length === 0 && cgroupVersion === 2) {
    // With v2 and no --cgroup, an existing --parent-cgroup is where the process goes, "contrary to its name".
    const hierarchy = new CgroupHierarchies(2, own.procMounts).v2Path();
    const parent = path.join(hierarchy, parentCgroup);
    if (fs.existsSync(parent)) writeln(path.join(parent, 'cgroup.procs'), String(own.shellPid));
  }
  if (cgroupArgs.length > 0) {
    const hierarchies = new CgroupHierarchies(cgroupVersion, own.procMounts);
    if (cgroupVersion !== 1 && cgroupVersion !== 2) {
      throw new JailerError(`${cgroupVersion} is an invalid cgroup version specifier`);
    }
    cgroupConf = new Map();
    for (const cg of cgroupArgs) {
      const parts = cg.split('=');
      if (parts.length !== 2 || parts[1] === '') throw new JailerError(`Invalid format for cgroups: ${cg}`);
      const [file, setting] = parts;
      if (hasSpecialComponent(file)) throw new JailerError(`Cgroup invalid file: ${cg}`);
      const controller = controllerOf(file);
      const base = cgroupVersion === 1 ? hierarchies.v1Path(controller) : hierarchies.v2Path();
      if (cgroupVersion === 2 && !hierarchies.v2Controllers().has(controller)) {
        throw new JailerError(`Controller ${controller} is unavailable`);
      }
      const key = cgroupVersion === 1 ? controller : 'unified';
      const group = cgroupConf.get(key) ?? {
        location: path.join(base, parentCgroup, id),
        depth: parentCgroup.split('/').filter((c) => c !== '' && c !== '.').length,
        properties: [],
      };
      group.properties.push({ file, value: setting });
      cgroupConf.set(key, group);
    }
  }
  const limits = { 'no-file': 2048, fsize: null };
  for (const arg of value('resource-limit') ?? []) {
    const at = arg.indexOf('=');
    if (at === -1) throw new JailerError(`Invalid format for resources limits: ${arg}`);
    const [name, text] = [arg.slice(0, at), arg.slice(at + 1)];
    if (!/^\d+$/.test(text))
      throw new JailerError(`Invalid limit value for resource: ${text}: invalid digit found in string`);
    if (name !== 'fsize' && name !== 'no-file') throw new JailerError(`Invalid resource argument: ${name}`);
    limits[name] = Number(text);
  }

  // ---- main_exec: the chroot directory, then Env::run.
  fs.mkdirSync(chrootDir, { recursive: true });
  copyExecToChroot(execFile, path.join(chrootDir, execName), uid, gid);
  if (netns !== null) checkNetns(netns);
  if (cgroupConf !== null) setupCgroups(cgroupVersion, cgroupConf, own.shellPid);
  for (const folder of FOLDER_HIERARCHY) {
    const dir = path.join(chrootDir, folder);
    fs.mkdirSync(dir, { recursive: true });
    fs.chmodSync(dir, 0o700);
    fs.chownSync(dir, uid, gid);
  }
  for (const device of DEVICES) {
    const node = path.join(chrootDir, device.path);
    try {
      execFileSync('mknod', ['-m', '0600', node, 'c', String(device.major), String(device.minor)], { stdio: 'pipe' });
      fs.chownSync(node, uid, gid);
    } catch (err) {
      const reason = fs.existsSync(node) ? 'File exists (os error 17)' : String(err.stderr ?? err.message).trim();
      if (device.required)
        throw new JailerError(`Failed to create ${device.path} via mknod inside the jail: ${reason}`);
      process.stdout.write(`Warning! Could not create ${device.path} device inside jailer: ${reason}.\n`);
    }
  }

  // The rest is the process's own: daemonize (double fork), the pid file, a new pid namespace, the exec.
  const startUs = Math.round(performance.timeOrigin * 1000);
  const command = [
    ...(netns === null ? [] : ['nsenter', `--net=${netns}`, '--']),
    'setpriv',
    `--reuid=${uid}`,
    `--regid=${gid}`,
    '--clear-groups',
    '--',
    'prlimit',
    `--nofile=${limits['no-file']}:${limits['no-file']}`,
    ...(limits.fsize === null ? [] : [`--fsize=${limits.fsize}:${limits.fsize}`]),
    '--',
    'env',
    '-i',
    'FIREDECK_DOUBLE_CHROOT=1',
    `./${execName}`,
    '--id',
    id,
    '--start-time-us',
    String(startUs),
    '--start-time-cpu-us',
    String(Math.round(process.cpuUsage().user)),
    '--parent-cpu-time-us',
    String(Math.round(process.cpuUsage().system)),
    ...parsed.extra,
  ];
  return {
    print: null,
    plan: {
      JAIL_ROOT: chrootDir,
      JAIL_PID_FILE: path.join(chrootDir, `${execName}.pid`),
      JAIL_DAEMONIZE: daemonize ? '1' : '0',
      JAIL_NEW_PID_NS: newPidNs ? '1' : '0',
    },
    command,
  };
}

function canonicalize(file) {
  try {
    return fs.realpathSync(file);
  } catch (err) {
    throw new JailerError(`Failed to canonicalize path ${file}: ${osError(err)}`);
  }
}

function parseU32(text, what) {
  if (!/^\d{1,10}$/.test(text) || Number(text) > 0xffffffff) throw new JailerError(`Invalid ${what}: ${text}`);
  return Number(text);
}

/**
 * Rust's Path::components() as env.rs checks it: a leading `/` is RootDir, a leading `.` CurDir, any `..`
 * ParentDir; `.` further in is normalised away and so passes.
 */
function hasSpecialComponent(p) {
  if (p.startsWith('/')) return true;
  const parts = p.split('/');
  if (parts[0] === '.') return true;
  return parts.includes('..');
}

/** cgroup.rs get_controller_from_filename: `<controller>.<property>`. */
function controllerOf(file) {
  const parts = file.split('.');
  if (parts.length < 2) throw new JailerError(`Cgroup invalid file: ${file}`);
  return parts[0];
}

/** cgroup.rs CgroupHierarchies: the cgroup mounts of one version, from /proc/mounts. */
class CgroupHierarchies {
  constructor(version, procMounts) {
    this.mounts = [];
    this.unified = null;
    let text;
    try {
      text = fs.readFileSync(procMounts, 'utf8');
    } catch (err) {
      throw new JailerError(`Failed to open file ${procMounts}: ${osError(err)}`);
    }
    const re = /^([a-z2]*)\s(?<dir>.*)\scgroup(?<ver>2?)\s(?<options>.*)\s0\s0$/;
    for (const line of text.split('\n')) {
      const m = re.exec(line);
      if (m === null) continue;
      if (version === 2 && m.groups.ver.length === 1) {
        this.unified = m.groups.dir;
        break;
      }
      if (version === 1 && m.groups.ver === '') this.mounts.push({ dir: m.groups.dir, options: m.groups.options });
    }
    if (this.unified === null && this.mounts.length === 0) {
      throw new JailerError('Hierarchy not found: No hierarchy found for this cgroup version.');
    }
  }

  v1Path(controller) {
    const mount = this.mounts.find((m) => m.options.split(',').includes(controller));
    if (mount === undefined) throw new JailerError(`Controller ${controller} is unavailable`);
    return mount.dir;
  }

  v2Path() {
    if (this.unified === null) throw new JailerError('Hierarchy not found: cgroupsv2 hierarchy missing');
    return this.unified;
  }

  v2Controllers() {
    try {
      return new Set(fs.readFileSync(path.join(this.v2Path(), 'cgroup.controllers'), 'utf8').trim().split(/\s+/));
    } catch {
      return new Set();
    }
  }
}

/** cgroup.rs setup_cgroup_conf: every group's values first, then the pid into each. */
function setupCgroups(version, conf, pid) {
  for (const group of conf.values()) {
    fs.mkdirSync(group.location, { recursive: true });
    const enabled = new Set();
    for (const property of group.properties) {
      if (version === 1) {
        inheritFromParent(group.location, property.file, group.depth);
      } else {
        const controller = controllerOf(property.file);
        if (!enabled.has(controller)) {
          writeAllSubtreeControl(path.dirname(group.location), controller);
          enabled.add(controller);
        }
      }
      writeln(path.join(group.location, property.file), property.value);
    }
  }
  for (const group of conf.values())
    writeln(path.join(group.location, version === 1 ? 'tasks' : 'cgroup.procs'), String(pid));
}

/** cgroup.rs inherit_from_parent_aux: a v1 file starts with its parent's first line, looked up recursively. */
function inheritFromParent(location, file, depth) {
  const parentFile = path.join(path.dirname(location), file);
  let line = readln(parentFile);
  if (line === '' && depth > 0) {
    try {
      inheritFromParent(path.dirname(location), file, depth - 1);
    } catch {
      // another jailer may have filled it meanwhile: only the value read next counts
    }
    line = readln(parentFile);
  }
  if (line === '')
    throw new JailerError(`Failed to inherit cgroups configurations from file ${file} in path ${location}`);
  writeln(path.join(location, file), line);
}

/** cgroup.rs CgroupV2::write_all_subtree_control: `+<controller>` from the hierarchy's root down to `dir`. */
function writeAllSubtreeControl(dir, controller) {
  const file = path.join(dir, 'cgroup.subtree_control');
  if (!fs.existsSync(file)) return;
  const parent = path.dirname(dir);
  if (parent !== dir) writeAllSubtreeControl(parent, controller);
  writeln(file, `+${controller}`);
}

function readln(file) {
  try {
    return fs.readFileSync(file, 'utf8').replace(/\n$/, '');
  } catch (err) {
    throw new JailerError(`Failed to read file ${file} into a string: ${osError(err)}`);
  }
}

function writeln(file, value) {
  try {
    fs.writeFileSync(file, `${value}\n`);
  } catch (err) {
    throw new JailerError(`Failed to write to ${file}: ${osError(err)}`);
  }
}

/**
 * env.rs copy_exec_to_chroot: a copy, never a link (no memory shared between two Firecrackers); O_NOFOLLOW, a
 * destination with a second hard link refused, owned by uid:gid, the source's mode.
 */
function copyExecToChroot(source, target, uid, gid) {
  const mode = fs.statSync(source).mode & 0o7777;
  let fd;
  try {
    fd = fs.openSync(target, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_NOFOLLOW, mode);
  } catch (err) {
    throw new JailerError(`Failed to open ${target}: ${osError(err)}`);
  }
  try {
    if (fs.fstatSync(fd).nlink > 1) throw new JailerError(`Detected hard link at: ${target}`);
    fs.fchownSync(fd, uid, gid);
    fs.writeSync(fd, fs.readFileSync(source));
  } finally {
    fs.closeSync(fd);
  }
}

/** env.rs join_netns: open the handle, setns(CLONE_NEWNET); the setns itself is nsenter's, in jailer.sh. */
function checkNetns(netns) {
  let stat;
  try {
    fs.closeSync(fs.openSync(netns, 'r'));
    stat = fs.statfsSync(netns);
  } catch (err) {
    throw new JailerError(`Failed to open file ${netns}: ${osError(err)}`);
  }
  if (stat.type !== NSFS_MAGIC)
    throw new JailerError('Failed to join network namespace: netns: Invalid argument (os error 22)');
}

function osError(err) {
  const codes = { ENOENT: 2, EACCES: 13, EPERM: 1, EEXIST: 17, ELOOP: 40, ENOTDIR: 20 };
  const text = String(err.message)
    .replace(/^[A-Z]+: /, '')
    .replace(/, \w+ .*$/, '');
  const n = codes[err.code];
  return n === undefined ? String(err.message) : `${text[0].toUpperCase()}${text.slice(1)} (os error ${n})`;
}

function shellQuote(word) {
  return `'${word.replace(/'/g, `'\\''`)}'`;
}

try {
  const result = main(process.argv.slice(2));
  if (result.print !== null) {
    process.stdout.write(`printf %s ${shellQuote(result.print)}\nexit 0\n`);
    process.exit(0);
  }
  const lines = Object.entries(result.plan).map(([k, v]) => `${k}=${shellQuote(v)}`);
  lines.push(`set -- ${result.command.map(shellQuote).join(' ')}`);
  process.stdout.write(`${lines.join('\n')}\n`);
} catch (err) {
  if (!(err instanceof JailerError)) throw err;
  // main.rs prints the error's Display; returning Err from main then exits 1.
  process.stderr.write(`${err.message}\n`);
  process.exit(1);
}
