import { execFile, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { FiredeckError } from '../../../src/shared/errors';
import type { DriverAvailability } from '../../../src/shared/protocol/daemon';
import { DoctorReport, type DoctorFinding } from '../../../src/shared/protocol/doctor';
import { FIREDECK_VERSION } from '../../../src/shared/version';
import { defaultConfig, type DaemonConfig } from '../config';
import { applyConfigFile, type ConfigLayer } from '../configFile';
import { ipToInt, parseCidr } from '../net/cidr';
import { groupId } from '../system/users';
import { driverPreference, findExecutable, runsInsideVm, versionOf } from '../vms/availability';
import { createVmDrivers, probeDrivers } from '../vms/vmDrivers';
import { DaemonClient } from './daemonClient';

const run = promisify(execFile);
const GiB = 1024 ** 3;

/** Where the doctor looks; the defaults are the real host's, tests point them elsewhere. */
export interface DoctorOptions {
  env: NodeJS.ProcessEnv;
  uid: number;
  /** The supplementary groups of this process (process.getgroups()). */
  processGroups: number[];
  kvmDevice: string;
  cgroupRoot: string;
  groupFile: string;
  passwdFile: string;
  /** Free space in the state dir below which the host cannot build images or clone disks. */
  minFreeBytes: number;
  /** Below this, a warning. */
  lowFreeBytes: number;
}

export function hostDoctorOptions(env: NodeJS.ProcessEnv = process.env): DoctorOptions {
  return {
    env,
    uid: process.getuid?.() ?? -1,
    processGroups: process.getgroups?.() ?? [],
    kvmDevice: '/dev/kvm',
    cgroupRoot: '/sys/fs/cgroup',
    groupFile: '/etc/group',
    passwdFile: '/etc/passwd',
    minFreeBytes: 2 * GiB,
    lowFreeBytes: 10 * GiB,
  };
}

const USAGE = `usage: firedeckd doctor [--json] [--config FILE] [--socket PATH] [--state-dir DIR] [--run-dir DIR]

Checks this host for firedeckd: the config file, KVM, QEMU and Firecracker (with their versions), the bridge
and its subnet, nftables, free space in the state dir, the socket's group and whether you are in it, cgroup v2.
Each finding says how to fix it. Exits 1 when a finding blocks the daemon, else 0.
`;

/** `firedeckd doctor`: prints the findings (text or --json); exit code 1 when any of them blocks. */
export async function doctorCommand(
  argv: string[],
  options: DoctorOptions = hostDoctorOptions(),
  out: NodeJS.WritableStream = process.stdout,
): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) {
    out.write(USAGE);
    return 0;
  }
  const json = argv.includes('--json');
  const report = await runDoctor(
    argv.filter((a) => a !== '--json'),
    options,
  );
  out.write(json ? `${JSON.stringify(report)}\n` : formatReport(report));
  return report.blocking > 0 ? 1 : 0;
}

/** Runs every check. The config file is read here (not by main) so that a broken one is a finding. */
export async function runDoctor(argv: string[], options: DoctorOptions): Promise<DoctorReport> {
  const findings: DoctorFinding[] = [];
  const env = options.env;
  let layer: ConfigLayer | null = null;
  let rest = argv;
  try {
    layer = applyConfigFile(argv, env);
    rest = layer.argv;
  } catch (err) {
    const e = FiredeckError.from(err);
    findings.push({ check: 'config', status: 'fail', message: e.message, ...(e.hint ? { fix: e.hint } : {}) });
    rest = argv.filter((a, i) => a !== '--config' && argv[i - 1] !== '--config' && !a.startsWith('--config='));
  }
  let base: DaemonConfig;
  try {
    base = defaultConfig(env);
  } catch (err) {
    // A bad FIREDECK_* variable: report it and check the rest of the host with the defaults.
    const e = FiredeckError.from(err);
    findings.push({ check: 'config', status: 'fail', message: e.message, fix: e.hint ?? 'fix or unset the variable' });
    base = defaultConfig({});
  }
  const config = withFlags(base, rest, env);
  if (layer !== null) findings.push(configFinding(layer));

  const drivers = await probeDrivers(createVmDrivers(config, env));
  findings.push(await kvmFinding(config, options));
  findings.push(...(await qemuFindings(config, drivers)));
  findings.push(await firecrackerFinding(config, drivers));
  findings.push(driverFinding(config, drivers));
  findings.push(await bridgeFinding(config));
  findings.push(await nftablesFinding(options));
  findings.push(diskFinding(config, options));
  findings.push(...(await socketFindings(config, options)));
  findings.push(cgroupFinding(options));
  return DoctorReport.parse({
    hostname: os.hostname(),
    version: FIREDECK_VERSION,
    findings,
    blocking: findings.filter((f) => f.status === 'fail').length,
  });
}

export function formatReport(report: DoctorReport): string {
  const label = { ok: 'ok  ', info: 'info', warn: 'WARN', fail: 'FAIL' } as const;
  const width = Math.max(...report.findings.map((f) => f.check.length));
  const lines = [`firedeckd ${report.version} doctor on ${report.hostname}`];
  for (const f of report.findings) {
    lines.push(`${label[f.status]}  ${f.check.padEnd(width)}  ${f.message}`);
    if (f.fix !== undefined) lines.push(`${' '.repeat(6 + width)}  fix: ${f.fix}`);
  }
  const warnings = report.findings.filter((f) => f.status === 'warn').length;
  lines.push(
    report.blocking > 0
      ? `${report.blocking} blocking finding(s), ${warnings} warning(s): firedeckd cannot work on this host until they are fixed`
      : `no blocking findings, ${warnings} warning(s)`,
  );
  return `${lines.join('\n')}\n`;
}

/** The daemon-wide flags the other commands take, so the doctor checks the same socket and dirs they use. */
function withFlags(config: DaemonConfig, argv: string[], env: NodeJS.ProcessEnv): DaemonConfig {
  const result = { ...config };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i]!;
    const value = argv[i + 1];
    if (!['--socket', '--state-dir', '--run-dir'].includes(flag)) {
      throw new FiredeckError('invalid_params', `firedeckd doctor: unknown option ${flag}`, {
        hint: 'firedeckd doctor --help',
      });
    }
    if (value === undefined) throw new FiredeckError('invalid_params', `${flag} needs a value`);
    i++;
    if (flag === '--socket') result.socketPath = value;
    else if (flag === '--state-dir') result.stateDir = value;
    else {
      result.runDir = value;
      if (env.FIREDECK_SOCKET === undefined && !argv.includes('--socket')) {
        result.socketPath = path.join(value, 'firedeckd.sock');
      }
    }
  }
  return result;
}

function configFinding(layer: ConfigLayer): DoctorFinding {
  const fromFile = [...layer.values.keys()];
  const fromEnv = [...layer.fromEnvironment];
  const parts = [
    layer.file === null
      ? 'no config file: defaults'
      : `${layer.file}: ${fromFile.length === 0 ? 'all defaults' : `sets ${fromFile.join(', ')}`}`,
  ];
  if (fromEnv.length > 0) parts.push(`the environment overrides ${fromEnv.join(', ')}`);
  return { check: 'config', status: 'ok', message: parts.join('; ') };
}

async function kvmFinding(config: DaemonConfig, options: DoctorOptions): Promise<DoctorFinding> {
  const needsKvm = config.driver === 'firecracker' || config.qemuAccel === 'kvm';
  const blocking = needsKvm ? 'fail' : 'warn';
  const why = needsKvm
    ? `the configured ${config.driver === 'firecracker' ? 'driver firecracker' : 'qemu-accel kvm'} needs it`
    : 'QEMU runs guests under TCG emulation (slow) and Firecracker cannot run';
  if (!fs.existsSync(options.kvmDevice)) {
    return {
      check: 'kvm',
      status: blocking,
      message: `no ${options.kvmDevice}: ${why}`,
      fix: 'enable virtualization (VT-x/AMD-V) in the firmware and load kvm_intel or kvm_amd; on a cloud VM choose an instance type with nested virtualization',
    };
  }
  try {
    // Opened, not access()ed: root passes access() even where a container's device policy refuses the open.
    fs.closeSync(fs.openSync(options.kvmDevice, 'r+'));
  } catch {
    if (options.uid !== 0) {
      return {
        check: 'kvm',
        status: 'info',
        message: `${options.kvmDevice} is not open to this user; firedeckd runs as root: run the doctor with sudo to check it`,
      };
    }
    return {
      check: 'kvm',
      status: blocking,
      message: `${options.kvmDevice} cannot be opened by root (a container's device policy?): ${why}`,
      fix: `allow the device ${options.kvmDevice} (character 10:232) to this machine or container`,
    };
  }
  const qemu = findExecutable('qemu-system-x86_64');
  if (qemu !== null) {
    const init = await qemuKvmInit(qemu);
    if (init !== null) {
      return {
        check: 'kvm',
        status: blocking,
        message: `${options.kvmDevice} opens but KVM cannot be initialised: ${init}`,
        fix: 'check dmesg for kvm errors; another hypervisor may hold VT-x',
      };
    }
  }
  if (config.qemuAccel === 'auto' && runsInsideVm()) {
    return {
      check: 'kvm',
      status: 'info',
      message: `${options.kvmDevice} is usable, but this host is itself a VM, where nested KVM often stalls guests: qemu-accel = auto uses TCG`,
      fix: 'set qemu-accel = kvm in the config file if nested KVM works on this host',
    };
  }
  return {
    check: 'kvm',
    status: 'ok',
    message: `${options.kvmDevice} usable${qemu !== null ? ' (QEMU initialised it)' : ''}`,
  };
}

/** Starts QEMU with KVM and no machine, and quits it over QMP: null when KVM initialised, else QEMU's complaint. */
function qemuKvmInit(qemu: string): Promise<string | null> {
  return new Promise((resolve) => {
    const child = spawn(
      qemu,
      ['-machine', 'none,accel=kvm', '-display', 'none', '-nodefaults', '-S', '-qmp', 'stdio'],
      {
        stdio: ['pipe', 'ignore', 'pipe'],
      },
    );
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    child.once('error', (err) => {
      clearTimeout(timer);
      resolve(err.message);
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve(code === 0 ? null : stderr.trim().split('\n')[0] || `qemu exited with ${code}`);
    });
    child.stdin.on('error', () => undefined);
    child.stdin.end('{"execute":"qmp_capabilities"}\n{"execute":"quit"}\n');
  });
}

type Drivers = DriverAvailability[];

async function qemuFindings(config: DaemonConfig, drivers: Drivers): Promise<DoctorFinding[]> {
  const qemu = drivers.find((d) => d.name === 'qemu')!;
  const firecracker = drivers.find((d) => d.name === 'firecracker')!;
  const findings: DoctorFinding[] = [];
  if (qemu.binary === null) {
    const needed = config.driver === 'qemu' || !firecracker.available;
    findings.push({
      check: 'qemu',
      status: needed ? 'fail' : 'info',
      message: needed
        ? 'qemu-system-x86_64 not found, and no other driver can run VMs here'
        : 'qemu-system-x86_64 not found (Firecracker serves)',
      fix: 'apt-get install qemu-system-x86',
    });
  } else {
    findings.push({
      check: 'qemu',
      status: 'ok',
      message: `${qemu.binary}: ${qemu.version ?? 'version unknown'} (acceleration ${qemu.accel})`,
    });
    const sandboxed = config.qemuSandbox !== 'off';
    findings.push({
      check: 'qemu-sandbox',
      status: sandboxed ? 'ok' : 'warn',
      message: qemu.confinement ?? (sandboxed ? 'sandboxed' : 'unconfined'),
      ...(sandboxed ? {} : { fix: 'set qemu-sandbox = on in the config file (the default)' }),
    });
  }
  const img = findExecutable('qemu-img');
  if (img === null) {
    findings.push({
      check: 'qemu-img',
      status: config.rootfsMode === 'overlay' ? 'fail' : 'warn',
      message: `qemu-img not found: rootfs-mode overlay and image boot tests need it${config.rootfsMode === 'overlay' ? ' (configured)' : ''}`,
      fix: 'apt-get install qemu-utils',
    });
  } else {
    findings.push({
      check: 'qemu-img',
      status: 'ok',
      message: `${img}: ${(await versionOf(img)) ?? 'version unknown'}`,
    });
  }
  return findings;
}

async function firecrackerFinding(config: DaemonConfig, drivers: Drivers): Promise<DoctorFinding> {
  const fc = drivers.find((d) => d.name === 'firecracker')!;
  const jailer = findExecutable('jailer');
  const jailerText =
    jailer === null ? 'jailer not found' : `jailer ${(await versionOf(jailer)) ?? 'version unknown'} at ${jailer}`;
  const wanted = config.driver === 'firecracker';
  if (fc.binary === null) {
    return {
      check: 'firecracker',
      status: wanted ? 'fail' : 'info',
      message: `firecracker not found${wanted ? ' but configured as the driver' : ' (optional: QEMU serves where it is absent)'}; ${jailerText}`,
      fix: 'install firecracker and jailer from a Firecracker release as /usr/local/bin/firecracker and /usr/local/bin/jailer',
    };
  }
  return {
    check: 'firecracker',
    status: fc.available ? (jailer === null ? 'warn' : 'ok') : wanted ? 'fail' : 'warn',
    message: `${fc.binary}: ${fc.version ?? 'version unknown'}; ${jailerText}${fc.available ? '' : `; unusable: ${fc.reason}`}`,
    ...(jailer === null ? { fix: 'install jailer from the same Firecracker release next to firecracker' } : {}),
  };
}

function driverFinding(config: DaemonConfig, drivers: Drivers): DoctorFinding {
  const order = driverPreference(config);
  const chosen = order.map((n) => drivers.find((d) => d.name === n && d.available)).find((d) => d !== undefined);
  if (chosen === undefined) {
    return {
      check: 'driver',
      status: 'fail',
      message: `no usable driver for new VMs (driver = ${config.driver ?? 'auto'}): ${drivers.map((d) => `${d.name}: ${d.reason ?? 'unavailable'}`).join('; ')}`,
      fix: 'apt-get install qemu-system-x86, or install Firecracker on a host with KVM',
    };
  }
  return {
    check: 'driver',
    status: 'ok',
    message: `new VMs get ${chosen.name}${chosen.accel ? ` (${chosen.accel})` : ''}; driver = ${config.driver ?? 'auto'}`,
  };
}

interface IpAddr {
  ifname: string;
  link_type?: string;
  linkinfo?: { info_kind?: string };
  addr_info?: { family: string; local: string; prefixlen: number }[];
}

async function bridgeFinding(config: DaemonConfig): Promise<DoctorFinding> {
  const ipBin = findExecutable('ip');
  if (ipBin === null) {
    return { check: 'bridge', status: 'fail', message: 'ip (iproute2) not found', fix: 'apt-get install iproute2' };
  }
  let subnet;
  try {
    subnet = parseCidr(config.cidr);
  } catch (err) {
    return { check: 'bridge', status: 'fail', message: FiredeckError.from(err).message, fix: 'set cidr = <a.b.c.d/n>' };
  }
  let links: IpAddr[];
  try {
    links = JSON.parse((await run(ipBin, ['-d', '-j', 'addr', 'show'], { timeout: 10_000 })).stdout) as IpAddr[];
  } catch (err) {
    return { check: 'bridge', status: 'warn', message: `ip addr show failed: ${String(err)}` };
  }
  const mask = subnet.prefix === 0 ? 0 : (0xffffffff << (32 - subnet.prefix)) >>> 0;
  for (const link of links) {
    if (link.ifname === config.bridge) continue;
    for (const a of link.addr_info ?? []) {
      if (a.family !== 'inet') continue;
      const theirMask = a.prefixlen === 0 ? 0 : (0xffffffff << (32 - a.prefixlen)) >>> 0;
      const common = (mask & theirMask) >>> 0;
      if ((ipToInt(a.local) & common) >>> 0 === (subnet.network & common) >>> 0) {
        return {
          check: 'bridge',
          status: 'fail',
          message: `cidr ${config.cidr} overlaps ${link.ifname}'s ${a.local}/${a.prefixlen}: guests would shadow that network`,
          fix: 'set cidr in the config file to a private subnet this host does not use',
        };
      }
    }
  }
  const bridge = links.find((l) => l.ifname === config.bridge);
  if (bridge === undefined) {
    return {
      check: 'bridge',
      status: 'info',
      message: `${config.bridge} does not exist yet: firedeckd creates it on start with ${subnet.gateway}/${subnet.prefix}`,
    };
  }
  if (bridge.linkinfo?.info_kind !== 'bridge') {
    return {
      check: 'bridge',
      status: 'fail',
      message: `${config.bridge} exists but is a ${bridge.linkinfo?.info_kind ?? bridge.link_type ?? 'non-bridge'} interface`,
      fix: 'set bridge in the config file to a name no other interface has',
    };
  }
  const has = (bridge.addr_info ?? []).some((a) => a.local === subnet.gateway && a.prefixlen === subnet.prefix);
  return has
    ? { check: 'bridge', status: 'ok', message: `${config.bridge} is a bridge with ${subnet.gateway}/${subnet.prefix}` }
    : {
        check: 'bridge',
        status: 'warn',
        message: `${config.bridge} is a bridge without ${subnet.gateway}/${subnet.prefix}: firedeckd adds it on start`,
      };
}

async function nftablesFinding(options: DoctorOptions): Promise<DoctorFinding> {
  const nft = findExecutable('nft');
  if (nft === null) {
    return {
      check: 'nftables',
      status: 'warn',
      message: 'nft not found: guest isolation rules (an nftables table of firedeckd) cannot be installed',
      fix: 'apt-get install nftables',
    };
  }
  const version = (await versionOf(nft)) ?? 'version unknown';
  if (options.uid !== 0) return { check: 'nftables', status: 'ok', message: `${nft}: ${version}` };
  try {
    await run(nft, ['list', 'tables'], { timeout: 10_000 });
    return { check: 'nftables', status: 'ok', message: `${nft}: ${version}; the kernel's nf_tables answers` };
  } catch (err) {
    const stderr = (err as { stderr?: string }).stderr?.trim() || String(err);
    return {
      check: 'nftables',
      status: 'warn',
      message: `${nft}: ${version}, but the kernel refuses it: ${stderr.split('\n')[0]}`,
      fix: 'load the nf_tables module (modprobe nf_tables), or allow NET_ADMIN to this machine or container',
    };
  }
}

/** statfs magic numbers of the file systems where `cp --reflink` clones are instant. */
const REFLINK_FS: Record<number, string> = { 0x58465342: 'xfs', 0x9123683e: 'btrfs' };

function diskFinding(config: DaemonConfig, options: DoctorOptions): DoctorFinding {
  let dir = path.resolve(config.stateDir);
  while (!fs.existsSync(dir) && dir !== path.dirname(dir)) dir = path.dirname(dir);
  const st = fs.statfsSync(dir);
  const free = st.bavail * st.bsize;
  const where = dir === config.stateDir ? config.stateDir : `${config.stateDir} (not there yet; on ${dir})`;
  const clone = REFLINK_FS[st.type]
    ? `${REFLINK_FS[st.type]}: VM disks are instant reflink clones`
    : 'no reflinks here: VM disks are sparse copies (XFS or btrfs clone instantly)';
  const mode = fs.statSync(dir).mode & 0o777;
  const open = dir === config.stateDir && (mode & 0o007) !== 0;
  const text = `${(free / GiB).toFixed(1)} GiB free in ${where}; ${clone}`;
  if (free < options.minFreeBytes) {
    return {
      check: 'disk',
      status: 'fail',
      message: `${text}: too little for a golden image and VM disks`,
      fix: `free space or move state-dir to a larger file system (at least ${options.minFreeBytes / GiB} GiB)`,
    };
  }
  if (open) {
    return {
      check: 'disk',
      status: 'warn',
      message: `${text}; but ${config.stateDir} is open to every user (mode ${mode.toString(8)})`,
      fix: `chmod 0750 ${config.stateDir}`,
    };
  }
  if (free < options.lowFreeBytes) {
    return {
      check: 'disk',
      status: 'warn',
      message: `${text}: low (golden images take 4 to 6 GiB each)`,
      fix: 'free space or move state-dir to a larger file system',
    };
  }
  return { check: 'disk', status: 'ok', message: text };
}

async function socketFindings(config: DaemonConfig, options: DoctorOptions): Promise<DoctorFinding[]> {
  const gid = groupId(config.group, options.groupFile);
  if (gid === null) {
    return [
      {
        check: 'group',
        status: 'fail',
        message: `group ${config.group} does not exist: nobody but root can use the daemon`,
        fix: `groupadd --system ${config.group}, then systemctl restart firedeckd`,
      },
      await socketFinding(config, null),
    ];
  }
  return [await socketFinding(config, gid), membershipFinding(config.group, gid, options)];
}

async function socketFinding(config: DaemonConfig, gid: number | null): Promise<DoctorFinding> {
  let st: fs.Stats;
  try {
    st = fs.statSync(config.socketPath);
  } catch {
    return {
      check: 'socket',
      status: 'fail',
      message: `no socket at ${config.socketPath}: firedeckd is not running`,
      fix: 'systemctl enable --now firedeckd; if it does not stay up: journalctl -u firedeckd',
    };
  }
  const mode = st.mode & 0o777;
  if (!st.isSocket() || mode !== 0o660 || (gid !== null && st.gid !== gid)) {
    return {
      check: 'socket',
      status: 'fail',
      message: `${config.socketPath} is ${st.isSocket() ? 'a socket' : 'not a socket'} with mode ${mode.toString(8)} and gid ${st.gid}; expected a socket 0660 of group ${config.group}`,
      fix: 'systemctl restart firedeckd (it sets the mode and group on start)',
    };
  }
  try {
    const info = await daemonInfo(config.socketPath);
    return {
      check: 'socket',
      status: 'ok',
      message: `${config.socketPath} (0660, group ${config.group}): firedeckd ${info.version} pid ${info.pid}, protocol ${info.protocolVersion}, up since ${info.startedAt}`,
    };
  } catch (err) {
    const e = FiredeckError.from(err);
    const denied = /EACCES|permission/i.test(e.message);
    return {
      check: 'socket',
      status: denied ? 'warn' : 'fail',
      message: `${config.socketPath} is there but firedeckd does not answer: ${e.message}`,
      fix: denied ? `see the group finding` : 'systemctl restart firedeckd; journalctl -u firedeckd',
    };
  }
}

async function daemonInfo(socketPath: string): Promise<{
  version: string;
  pid: number;
  protocolVersion: number;
  startedAt: string;
}> {
  const client = await DaemonClient.connect(socketPath);
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      client.call('daemon.info', {}),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new FiredeckError('timeout', 'no answer to daemon.info within 10 s')), 10_000);
      }),
    ]);
  } finally {
    clearTimeout(timer);
    client.close();
  }
}

function membershipFinding(group: string, gid: number, options: DoctorOptions): DoctorFinding {
  const fix = (user: string): string => `usermod -aG ${group} ${user}, then log in again`;
  if (options.uid === 0) {
    const sudoUser = options.env.SUDO_USER;
    if (sudoUser !== undefined && sudoUser !== 'root' && !isMember(sudoUser, group, gid, options)) {
      return {
        check: 'group',
        status: 'warn',
        message: `root may use the socket, but ${sudoUser} (who ran sudo) is not in group ${group}`,
        fix: fix(sudoUser),
      };
    }
    return { check: 'group', status: 'ok', message: `root may use the socket; members of ${group} may too` };
  }
  const user = userName(options.uid, options.passwdFile) ?? String(options.uid);
  if (options.processGroups.includes(gid)) {
    return { check: 'group', status: 'ok', message: `${user} is in group ${group} and may use the daemon` };
  }
  if (isMember(user, group, gid, options)) {
    return {
      check: 'group',
      status: 'warn',
      message: `${user} was added to group ${group}, but this login session predates it`,
      fix: 'log out and in again (or: newgrp firedeck)',
    };
  }
  return {
    check: 'group',
    status: 'fail',
    message: `${user} is not in group ${group}: the daemon refuses this user`,
    fix: fix(user),
  };
}

function isMember(user: string, group: string, gid: number, options: DoctorOptions): boolean {
  const line = readLines(options.groupFile).find((l) => l.split(':')[0] === group);
  if (line?.split(':')[3]?.split(',').includes(user)) return true;
  const passwd = readLines(options.passwdFile).find((l) => l.split(':')[0] === user);
  return passwd !== undefined && Number(passwd.split(':')[3]) === gid;
}

function userName(uid: number, passwdFile: string): string | null {
  const line = readLines(passwdFile).find((l) => Number(l.split(':')[2]) === uid);
  return line?.split(':')[0] ?? null;
}

function readLines(file: string): string[] {
  try {
    return fs.readFileSync(file, 'utf8').split('\n');
  } catch {
    return [];
  }
}

function cgroupFinding(options: DoctorOptions): DoctorFinding {
  const file = path.join(options.cgroupRoot, 'cgroup.controllers');
  let controllers: string[];
  try {
    controllers = fs.readFileSync(file, 'utf8').trim().split(/\s+/).filter(Boolean);
  } catch {
    return {
      check: 'cgroup',
      status: 'warn',
      message: `${options.cgroupRoot} is not a cgroup v2 hierarchy: the Firecracker jailer cannot confine VMs (QEMU is unaffected)`,
      fix: 'boot with systemd.unified_cgroup_hierarchy=1 (the default since Debian 11)',
    };
  }
  const missing = ['cpu', 'memory'].filter((c) => !controllers.includes(c));
  if (missing.length > 0) {
    return {
      check: 'cgroup',
      status: 'warn',
      message: `cgroup v2 without the ${missing.join(' and ')} controller(s): the jailer cannot limit VMs`,
      fix: 'enable them in the kernel (cgroup_enable=memory) and the root cgroup.subtree_control',
    };
  }
  return { check: 'cgroup', status: 'ok', message: `cgroup v2 (${controllers.join(' ')})` };
}
