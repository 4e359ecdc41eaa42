import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ensureTap } from '../../host-daemon/src/net/links';
import { pidAlive, readCmdline } from '../../host-daemon/src/system/processes';
import type { VmHandle, VmLaunchSpec } from '../../host-daemon/src/vms/driver';
import { FirecrackerDriver, type FirecrackerDriverOptions } from '../../host-daemon/src/vms/firecracker/driver';
import { jailLayout, type JailerOptions } from '../../host-daemon/src/vms/firecracker/jailer';
import {
  TestVms,
  type ConsoleWatch,
  KEYBOARD_CONFIG,
  readCalls,
  rejectionOf,
  writeFirecracker,
  writeJailer,
  writeKernel,
  type Call,
} from '../doubles/firecracker/harness';

// The Firecracker driver launching under the jailer, as root, with the real parts this machine has: an
// unprivileged uid that owns the jail, network namespaces, a TAP inside one owned by that uid and attached with
// TUNSETIFF as that uid, bridge ports, FIFOs, cgroup v1 (this host is hybrid) and its detection. The jailer and
// Firecracker themselves are the doubles of test/doubles/firecracker, which follow their sources.

const PREFIX = 'fdf0';
const BRIDGE = `${PREFIX}br0`;
/** An unprivileged id no account has: the jailer takes numbers. */
const JAIL_ID = 62080;
/** The cgroup (v1, cpu controller only: this machine's own processes sit at its root) the real-cgroup test uses. */
const CPU_PARENT = `${PREFIX}-cgroup-test`;

let tmp: string;
let bin: string;
let firecracker: string;
let jailer: string;
let kernel: string;
let vmCount = 0;
let tapCount = 0;
const vms = new TestVms();

function ip(...args: string[]): string {
  return execFileSync('ip', args, { encoding: 'utf8' });
}

function removeOurNetwork(): void {
  for (const ns of fs.existsSync('/run/netns') ? fs.readdirSync('/run/netns') : []) {
    if (ns.startsWith(`${PREFIX}-`)) ip('netns', 'del', ns);
  }
  for (const link of JSON.parse(ip('-j', 'link', 'show')) as { ifname: string }[]) {
    if (link.ifname.startsWith(PREFIX)) ip('link', 'del', link.ifname);
  }
}

beforeAll(() => {
  expect(process.getuid?.(), 'this suite runs as root').toBe(0);
  removeOurNetwork();
  ip('link', 'add', BRIDGE, 'type', 'bridge');
  ip('link', 'set', BRIDGE, 'up');
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'fdt-fcjail-'));
  bin = path.join(tmp, 'bin');
  fs.mkdirSync(bin);
  // As a release unpacks: a versioned file name, and the name the daemon is told to run as a symlink to it.
  writeFirecracker(bin, 'firecracker-v1.17.0');
  fs.symlinkSync('firecracker-v1.17.0', path.join(bin, 'firecracker'));
  firecracker = path.join(bin, 'firecracker');
  jailer = writeJailer(bin, 'jailer');
  kernel = writeKernel(path.join(tmp, 'vmlinux'), KEYBOARD_CONFIG);
});

afterEach(async () => {
  await vms.cleanup();
});

afterAll(() => {
  removeOurNetwork();
  try {
    fs.rmdirSync(`/sys/fs/cgroup/cpu/${CPU_PARENT}`);
  } catch {
    // never made, or already gone
  }
  fs.rmSync(tmp, { recursive: true, force: true });
});

function jailerOptions(over: Partial<JailerOptions> = {}): JailerOptions {
  return {
    binary: jailer,
    uid: JAIL_ID,
    gid: JAIL_ID,
    chrootBaseDir: path.join(tmp, 'jails'),
    netnsPrefix: `${PREFIX}-`,
    // The real-cgroup test asks for cgroups itself; the others need none (cgroup v1 memory is the harness's).
    limits: false,
    ...over,
  };
}

function driverWith(
  over: Partial<JailerOptions> = {},
  options: Partial<FirecrackerDriverOptions> = {},
): FirecrackerDriver {
  fs.mkdirSync(path.join(tmp, 'jails'), { recursive: true });
  return new FirecrackerDriver({ binary: firecracker, jailer: jailerOptions(over), ...options });
}

/** A VM's files as the daemon has them: root's, the config drive private to root. */
function launchSpec(overrides: Partial<VmLaunchSpec> = {}): VmLaunchSpec {
  const id = `vm-${(0xfc100000 + ++vmCount).toString(16)}`;
  const dir = path.join(tmp, 'state', id);
  fs.mkdirSync(dir, { recursive: true });
  const rootfs = path.join(dir, 'rootfs.img');
  fs.writeFileSync(rootfs, '', { mode: 0o644 });
  fs.truncateSync(rootfs, 64 * 1024 * 1024);
  const configDrive = path.join(dir, 'config.img');
  fs.writeFileSync(configDrive, 'vnc-password', { mode: 0o600 });
  return {
    id,
    name: `fc-jail-${vmCount}`,
    kind: 'cli',
    vcpus: 2,
    memoryMib: 256,
    kernelPath: kernel,
    initrdPath: null,
    kernelArgs: `console=ttyS0 root=/dev/vda rw ip=10.213.80.${10 + vmCount}::10.213.80.1:255.255.255.0:fc:eth0:off`,
    rootfsPath: rootfs,
    rootfsFormat: 'raw',
    configDrivePath: configDrive,
    tap: null,
    mac: null,
    runDir: path.join(tmp, 'run', id),
    ...overrides,
  };
}

/** A TAP for the VM on the bridge, as the daemon makes one before it starts a VM, with port isolation on. */
async function daemonTap(): Promise<string> {
  const tap = `${PREFIX}tap${++tapCount}`;
  await ensureTap(tap, BRIDGE);
  execFileSync('bridge', ['link', 'set', 'dev', tap, 'isolated', 'on']);
  return tap;
}

function watch(handle: VmHandle, spec: VmLaunchSpec): Promise<ConsoleWatch> {
  return vms.watch(handle, path.join(tmp, 'state', spec.id, 'console'));
}

function chrootOf(spec: VmLaunchSpec, execName = 'firecracker-v1.17.0'): string {
  return path.join(tmp, 'jails', execName, spec.id, 'root');
}

function calls(spec: VmLaunchSpec): Call[] {
  return readCalls(path.join(chrootOf(spec), 'run', 'firecracker.socket.calls.jsonl'));
}

function status(pid: number, field: string): string {
  const line = fs
    .readFileSync(`/proc/${pid}/status`, 'utf8')
    .split('\n')
    .find((l) => l.startsWith(`${field}:`));
  return (line ?? '').slice(field.length + 1).trim();
}

describe('Firecracker under the jailer', () => {
  it("takes the pid from the jailer's pid file: with --daemonize the jailer exits 0 and Firecracker lives on", async () => {
    const driver = driverWith();
    const spec = launchSpec();
    const handle = await vms.start(driver, spec);
    const chroot = chrootOf(spec);

    // env.rs: the grandchild writes its own pid (no newline) before its exec.
    expect(fs.readFileSync(path.join(chroot, 'firecracker-v1.17.0.pid'), 'utf8')).toBe(String(handle.pid));
    expect(pidAlive(handle.pid)).toBe(true);
    expect(handle.cmdline).toBe(readCmdline(handle.pid));
    expect(handle.cmdline).toContain('--id\0' + spec.id);
    // Not a child of the daemon, and no session leader (the double fork).
    expect(Number(status(handle.pid, 'PPid'))).not.toBe(process.pid);
    expect(Number(fs.readFileSync(`/proc/${handle.pid}/stat`, 'utf8').split(') ')[1]!.split(' ')[4])).not.toBe(
      handle.pid,
    );
    expect(handle.controlSocket).toBe(path.join(chroot, 'run', 'firecracker.socket'));
    await expect(driver.inspect(handle)).resolves.toEqual({ alive: true, status: 'Running' });

    const console = await watch(handle, spec);
    await console.waitFor('vm');
    await expect(driver.stop(handle, 10_000)).resolves.toBe('graceful');
    vms.forget(handle);
    await console.waitFor('disconnect');
    expect(console.text()).toContain('reboot: Restarting system');
    expect(fs.existsSync(path.dirname(chroot))).toBe(false);
  });

  it('runs Firecracker as the unprivileged uid in a chroot laid out as the jailer does, the VM files linked in', async () => {
    const driver = driverWith();
    const spec = launchSpec();
    const handle = await vms.start(driver, spec);
    const chroot = chrootOf(spec);

    expect(status(handle.pid, 'Uid').split(/\s+/)).toEqual(Array(4).fill(String(JAIL_ID)));
    expect(status(handle.pid, 'Gid').split(/\s+/)).toEqual(Array(4).fill(String(JAIL_ID)));
    expect(status(handle.pid, 'Groups')).toBe('');
    expect(fs.readlinkSync(`/proc/${handle.pid}/cwd`)).toBe(chroot);
    // The jailer clears the environment.
    expect(fs.readFileSync(`/proc/${handle.pid}/environ`, 'utf8')).not.toContain('PATH=');

    const entry = (name: string): fs.Stats => fs.lstatSync(path.join(chroot, name));
    // <chroot> and the jailer's folders: 0700, the jail's.
    for (const dir of ['.', 'dev', 'dev/net', 'run']) {
      expect([entry(dir).uid, entry(dir).gid, entry(dir).mode & 0o777], dir).toEqual([JAIL_ID, JAIL_ID, 0o700]);
    }
    for (const [node, major, minor] of [
      ['dev/net/tun', 10, 200],
      ['dev/kvm', 10, 232],
      ['dev/urandom', 1, 9],
    ] as const) {
      expect(entry(node).isCharacterDevice(), node).toBe(true);
      expect([Math.floor(entry(node).rdev / 256), entry(node).rdev % 256, entry(node).uid], node).toEqual([
        major,
        minor,
        JAIL_ID,
      ]);
    }
    // The exec file is a copy (never a link: no memory shared between Firecrackers), the jail's.
    expect(entry('firecracker-v1.17.0').ino).not.toBe(fs.statSync(firecracker).ino);
    expect(entry('firecracker-v1.17.0').uid).toBe(JAIL_ID);
    // Disks and the kernel hard-linked; the rootfs the jail's while the VM runs.
    expect(entry('rootfs.img').ino).toBe(fs.statSync(spec.rootfsPath).ino);
    expect(fs.statSync(spec.rootfsPath).uid).toBe(JAIL_ID);
    expect(entry('vmlinux').ino).toBe(fs.statSync(kernel).ino);
    // The config drive stays root's 0600 on the host; the jail reads its own copy.
    expect(fs.statSync(spec.configDrivePath!)).toMatchObject({ uid: 0, mode: expect.any(Number) });
    expect(fs.statSync(spec.configDrivePath!).mode & 0o777).toBe(0o600);
    expect([entry('config.img').uid, entry('config.img').mode & 0o777]).toEqual([JAIL_ID, 0o400]);
    expect(entry('serial.fifo').isFIFO()).toBe(true);
    expect([entry('serial.fifo').uid, entry('serial.fifo').mode & 0o777]).toEqual([JAIL_ID, 0o600]);
    expect(entry('run/firecracker.socket').isSocket()).toBe(true);
    // Nothing of the daemon's inside the jail.
    expect(fs.readdirSync(chroot).sort()).toEqual(
      [
        'config.img',
        'dev',
        'firecracker-v1.17.0',
        'firecracker-v1.17.0.pid',
        'rootfs.img',
        'run',
        'serial.fifo',
        'vmlinux',
      ].sort(),
    );

    // Firecracker was given paths inside its chroot, and opened each as the jail's uid.
    const puts = calls(spec).filter((c) => c.method === 'PUT');
    expect(puts.filter((c) => c.status !== 204)).toEqual([]);
    expect(puts.find((c) => c.path === '/boot-source')?.body).toMatchObject({ kernel_image_path: '/vmlinux' });
    expect(puts.find((c) => c.path === '/drives/rootfs')?.body).toMatchObject({ path_on_host: '/rootfs.img' });
    expect(puts.find((c) => c.path === '/drives/config')?.body).toMatchObject({ path_on_host: '/config.img' });
    expect(puts.find((c) => c.path === '/serial')?.body).toMatchObject({ serial_out_path: '/serial.fifo' });

    await expect(driver.stop(handle, 10_000)).resolves.toBe('graceful');
    vms.forget(handle);
    // The rootfs is root's again, the jail gone.
    expect(fs.statSync(spec.rootfsPath).uid).toBe(0);
    expect(fs.existsSync(path.dirname(chroot))).toBe(false);
  });

  it("puts the chroot under the symlink target's name, as the jailer canonicalises --exec-file", async () => {
    const driver = driverWith();
    const spec = launchSpec();
    const handle = await vms.start(driver, spec);
    expect(handle.controlSocket).toBe(path.join(chrootOf(spec, 'firecracker-v1.17.0'), 'run', 'firecracker.socket'));
    expect(fs.existsSync(path.join(tmp, 'jails', 'firecracker', spec.id))).toBe(false);
    expect(jailLayout({ chrootBaseDir: path.join(tmp, 'jails') }, firecracker, spec.id).execName).toBe(
      'firecracker-v1.17.0',
    );
  });

  it('finds Firecracker in a new pid namespace, and without --daemonize, through the same pid file', async () => {
    for (const over of [{ newPidNs: true }, { daemonize: false }, { daemonize: false, newPidNs: true }]) {
      const driver = driverWith(over);
      const spec = launchSpec();
      const handle = await vms.start(driver, spec);
      expect(fs.readFileSync(path.join(chrootOf(spec), 'firecracker-v1.17.0.pid'), 'utf8'), JSON.stringify(over)).toBe(
        String(handle.pid),
      );
      if (over.newPidNs)
        expect(status(handle.pid, 'NSpid').split(/\s+/), JSON.stringify(over)).toEqual([String(handle.pid), '1']);
      await expect(driver.inspect(handle)).resolves.toEqual({ alive: true, status: 'Running' });
      await expect(driver.stop(handle, 10_000)).resolves.toBe('graceful');
      vms.forget(handle);
    }
  });

  it("is adopted by a restarted daemon and stopped by it; a dead VM's jail is removed on adoption", async () => {
    const spec = launchSpec({ tap: await daemonTap(), mac: '52:54:00:fc:80:01' });
    const handle = await vms.start(driverWith({ netns: 'per-vm' }), spec);
    const restarted = driverWith({ netns: 'per-vm' });
    await expect(restarted.adopt(handle)).resolves.toBe(true);
    await expect(restarted.stop(handle, 10_000)).resolves.toBe('graceful');
    vms.forget(handle);
    expect(fs.existsSync(path.dirname(chrootOf(spec)))).toBe(false);
    expect(fs.existsSync(`/run/netns/${PREFIX}-${spec.id}`)).toBe(false);

    const second = launchSpec({ tap: await daemonTap() });
    const dead = await vms.start(driverWith({ netns: 'per-vm' }), second);
    vms.forget(dead);
    process.kill(dead.pid, 'SIGKILL');
    while (pidAlive(dead.pid)) await new Promise((r) => setTimeout(r, 20));
    await expect(driverWith({ netns: 'per-vm' }).adopt(dead)).resolves.toBe(false);
    expect(fs.existsSync(path.dirname(chrootOf(second)))).toBe(false);
    expect(fs.existsSync(`/run/netns/${PREFIX}-${second.id}`)).toBe(false);
    expect(fs.statSync(second.rootfsPath).uid).toBe(0);
  });
});

describe("the jail's network namespace", () => {
  it("gets the TAP inside it, owned by the jail, bridged to the host end that took the TAP's name and flags", async () => {
    const tap = await daemonTap();
    const driver = driverWith({ netns: 'per-vm' });
    const spec = launchSpec({ tap, mac: '52:54:00:fc:80:02' });
    const handle = await vms.start(driver, spec);
    const ns = `${PREFIX}-${spec.id}`;

    const inNs = JSON.parse(ip('-n', ns, '-d', '-j', 'link', 'show')) as {
      ifname: string;
      master?: string;
      flags: string[];
      linkinfo?: { info_kind?: string; info_data?: Record<string, unknown> };
    }[];
    const tap0 = inNs.find((l) => l.ifname === 'tap0')!;
    expect(tap0.linkinfo).toMatchObject({
      info_kind: 'tun',
      info_data: { type: 'tap', user: JAIL_ID, group: JAIL_ID },
    });
    expect(tap0.master).toBe('br0');
    // Firecracker (the double, as the jail's uid, in the namespace) attached it: TUNSETIFF gave it a carrier.
    expect(tap0.flags).not.toContain('NO-CARRIER');
    expect(inNs.find((l) => l.ifname === 'veth0')?.master).toBe('br0');
    const host = (JSON.parse(ip('-d', '-j', 'link', 'show', 'dev', tap)) as typeof inNs)[0]!;
    expect(host.linkinfo?.info_kind).toBe('veth');
    expect(host.master).toBe(BRIDGE);
    const port = (
      JSON.parse(execFileSync('bridge', ['-d', '-j', 'link', 'show', 'dev', tap], { encoding: 'utf8' })) as {
        isolated?: boolean;
      }[]
    )[0]!;
    expect(port.isolated).toBe(true);
    expect(calls(spec).find((c) => c.path === '/network-interfaces/eth0')).toMatchObject({
      status: 204,
      body: { iface_id: 'eth0', host_dev_name: 'tap0', guest_mac: '52:54:00:fc:80:02' },
    });
    const args = fs.readFileSync(`/proc/${handle.pid}/cmdline`, 'utf8');
    expect(args).not.toContain('--netns'); // the jailer's, not Firecracker's
    expect(fs.readlinkSync(`/proc/${handle.pid}/ns/net`)).toBe(
      execFileSync('ip', ['netns', 'exec', ns, 'readlink', '/proc/self/ns/net'], { encoding: 'utf8' }).trim(),
    );

    await expect(driver.stop(handle, 10_000)).resolves.toBe('graceful');
    vms.forget(handle);
    expect(fs.existsSync(`/run/netns/${ns}`)).toBe(false);
    // The veth went with the namespace; the daemon makes the VM a new TAP when it boots again.
    expect((JSON.parse(ip('-j', 'link', 'show')) as { ifname: string }[]).map((l) => l.ifname)).not.toContain(tap);
  });

  it("keeps the host's namespace when told to, opening the daemon's TAP there", async () => {
    const tap = await daemonTap();
    const driver = driverWith({ netns: 'host' });
    const spec = launchSpec({ tap });
    const handle = await vms.start(driver, spec);
    expect(calls(spec).find((c) => c.path === '/network-interfaces/eth0')).toMatchObject({
      status: 204,
      body: { host_dev_name: tap },
    });
    expect(fs.existsSync(`/run/netns/${PREFIX}-${spec.id}`)).toBe(false);
    expect(handle.pid).toBeGreaterThan(0);
  });
});

describe('the TAP check', () => {
  it("is the kernel's: a TAP another uid owns is refused to the jail's uid, and nothing of the VM stays", async () => {
    const tap = `${PREFIX}tap${++tapCount}`;
    ip('tuntap', 'add', 'dev', tap, 'mode', 'tap', 'user', String(JAIL_ID + 1));
    const spec = launchSpec({ tap });
    const err = await rejectionOf(driverWith({ netns: 'host' }).start(spec));
    expect(err.message).toMatch(
      /PUT \/network-interfaces\/eth0 \(HTTP 400\): Could not create the network device: .*Operation not permitted \(os error 1\)/,
    );
    expect(fs.existsSync(path.dirname(chrootOf(spec)))).toBe(false);
    expect(fs.statSync(spec.rootfsPath).uid).toBe(0);
  });
});

describe("the jail's cgroups", () => {
  it('are v1 on this hybrid host and hold the Firecracker process with its CPU limit', async () => {
    const driver = driverWith({
      cgroups: ['cpu.cfs_period_us=100000', 'cpu.cfs_quota_us=50000'],
      parentCgroup: CPU_PARENT,
    });
    const spec = launchSpec();
    const handle = await vms.start(driver, spec);
    const dir = `/sys/fs/cgroup/cpu/${CPU_PARENT}/${spec.id}`;
    expect(fs.readFileSync(path.join(dir, 'cpu.cfs_quota_us'), 'utf8').trim()).toBe('50000');
    const cpuLine = fs
      .readFileSync(`/proc/${handle.pid}/cgroup`, 'utf8')
      .split('\n')
      .find((l) => l.split(':')[1]?.split(',').includes('cpu'));
    expect(cpuLine?.split(':')[2]).toBe(`/${CPU_PARENT}/${spec.id}`);
    await expect(driver.stop(handle, 10_000)).resolves.toBe('graceful');
    vms.forget(handle);
    expect(fs.existsSync(dir)).toBe(false);
  });

  it('are v2 where the controllers live on the unified hierarchy, with CPU and memory limits from the VM', async () => {
    // A cgroup v2 host's /proc/mounts and tree, as the jailer's own tests lay one out (cgroup.rs MockCgroupFs).
    const root = path.join(tmp, 'cgroup2');
    fs.mkdirSync(path.join(root, 'firedeck'), { recursive: true });
    fs.writeFileSync(path.join(root, 'cgroup.controllers'), 'cpuset cpu io memory pids\n');
    fs.writeFileSync(path.join(root, 'cgroup.subtree_control'), '');
    fs.writeFileSync(path.join(root, 'firedeck', 'cgroup.subtree_control'), '');
    const mounts = path.join(tmp, 'mounts-v2');
    fs.writeFileSync(
      mounts,
      `/dev/vda / ext4 rw 0 0\ncgroup2 ${root} cgroup2 rw,nosuid,nodev,noexec,relatime,nsdelegate 0 0\n`,
    );
    const driver = new FirecrackerDriver({
      binary: firecracker,
      jailer: jailerOptions({
        binary: writeJailer(bin, 'jailer-v2-host', ['--double-proc-mounts', mounts]),
        procMounts: mounts,
        limits: true,
      }),
    });
    const spec = launchSpec({ vcpus: 2, memoryMib: 256 });
    const handle = await vms.start(driver, spec);
    const vmCgroup = path.join(root, 'firedeck', spec.id);
    expect(fs.readFileSync(path.join(vmCgroup, 'cpu.max'), 'utf8')).toBe('200000 100000\n');
    expect(fs.readFileSync(path.join(vmCgroup, 'memory.max'), 'utf8')).toBe(`${320 * 1024 * 1024}\n`);
    expect(fs.readFileSync(path.join(root, 'firedeck', 'cgroup.subtree_control'), 'utf8')).toMatch(
      /^\+(cpu|memory)\n$/,
    );
    expect(Number(fs.readFileSync(path.join(vmCgroup, 'cgroup.procs'), 'utf8'))).toBeGreaterThan(0);
    expect(handle.pid).toBeGreaterThan(0);
  });

  it('are refused before the jailer runs when the jailer would refuse them', async () => {
    const spec = launchSpec();
    const err = await rejectionOf(driverWith({ cgroups: ['io.max=8:0 wbps=1048576'] }).start(spec));
    expect(err.kind).toBe('invalid_params');
    expect(fs.existsSync(path.join(tmp, 'jails', 'firecracker-v1.17.0', spec.id))).toBe(false);
  });
});
