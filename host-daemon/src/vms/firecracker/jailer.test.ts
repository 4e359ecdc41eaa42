import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FiredeckError } from '../../../../src/shared/errors';
import { checkCgroupSetting, checkParentCgroup, detectCgroupVersion, vmCgroupDirs, vmCgroupLimits } from './cgroups';
import {
  cleanupJail,
  JAILED_API_SOCKET,
  jailerArgs,
  jailLayout,
  jailLayoutOfSocket,
  stageJail,
  type JailerOptions,
} from './jailer';
import { readLaunchRecord } from './launchRecord';

// The jailer itself needs root; what the driver does around it (its command line, the chroot it builds and
// removes, the cgroup version it picks) runs here on real files. Launches under the jailer double, as root with
// an unprivileged uid, are in test/integration/firecracker-jailer.test.ts.
let tmp: string;
let options: JailerOptions;

beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'fdt-jail-'));
  options = {
    binary: 'jailer',
    uid: process.getuid!(),
    gid: process.getgid!(),
    chrootBaseDir: path.join(tmp, 'jails'),
    daemonize: true,
    newPidNs: true,
  };
});

afterAll(() => {
  fs.rmSync(tmp, { recursive: true, force: true });
});

const gracefulStop = { support: 'unknown', reason: 'test' } as const;

describe('jailer command line', () => {
  it('passes the cgroup version with the cgroups, and the netns, then the API socket for Firecracker', () => {
    const launch = {
      cgroupVersion: 2 as const,
      cgroups: ['cpu.max=200000 100000', 'memory.max=335544320'],
      netnsPath: '/run/netns/fdvm-00c0ffee',
    };
    expect(
      jailerArgs({ ...options, uid: 62080, gid: 62081 }, '/usr/local/bin/firecracker', 'vm-00c0ffee', launch),
    ).toEqual([
      '--id',
      'vm-00c0ffee',
      '--exec-file',
      '/usr/local/bin/firecracker',
      '--uid',
      '62080',
      '--gid',
      '62081',
      '--chroot-base-dir',
      options.chrootBaseDir,
      '--cgroup-version',
      '2',
      '--parent-cgroup',
      'firedeck',
      '--cgroup',
      'cpu.max=200000 100000',
      '--cgroup',
      'memory.max=335544320',
      '--netns',
      '/run/netns/fdvm-00c0ffee',
      '--daemonize',
      '--new-pid-ns',
      '--',
      '--api-sock',
      JAILED_API_SOCKET,
    ]);
    // No cgroup, no cgroup flags; --daemonize is the default.
    expect(
      jailerArgs(
        { ...options, uid: 62080, gid: 62080, newPidNs: false, daemonize: undefined },
        '/usr/bin/firecracker',
        'vm-1',
        {
          cgroupVersion: null,
          cgroups: [],
          netnsPath: null,
        },
      ),
    ).toEqual([
      '--id',
      'vm-1',
      '--exec-file',
      '/usr/bin/firecracker',
      '--uid',
      '62080',
      '--gid',
      '62080',
      '--chroot-base-dir',
      options.chrootBaseDir,
      '--daemonize',
      '--',
      '--api-sock',
      JAILED_API_SOCKET,
    ]);
  });

  it('refuses what the jailer would refuse, and root, with typed errors', () => {
    const args = (over: Partial<JailerOptions>, cgroups: string[] = []): string[] =>
      jailerArgs({ ...options, uid: 62080, gid: 62080, ...over }, '/usr/bin/firecracker', 'vm-1', {
        cgroupVersion: 1,
        cgroups,
        netnsPath: null,
      });
    const kind = (fn: () => unknown): string => {
      try {
        fn();
      } catch (err) {
        return err instanceof FiredeckError ? err.kind : 'untyped';
      }
      return 'accepted';
    };
    expect(kind(() => args({ uid: -1 }))).toBe('invalid_params');
    expect(kind(() => args({ uid: 0 }))).toBe('invalid_params');
    expect(kind(() => args({ gid: 0 }))).toBe('invalid_params');
    expect(kind(() => args({}, ['cpu.max=1=2']))).toBe('invalid_params');
    expect(kind(() => args({ cgroups: ['nonsense'] }))).toBe('invalid_params');
    expect(kind(() => args({ parentCgroup: '..' }))).toBe('invalid_params');
    expect(kind(() => args({ chrootBaseDir: 'relative/jails' }))).toBe('invalid_params');
    expect(kind(() => args({}, ['cpu.max=max 100000']))).toBe('accepted');
  });
});

describe('cgroup settings', () => {
  it('accept one "=" and a plain file name, as env.rs does', () => {
    for (const good of ['cpu.max=200000 100000', 'cpuset.cpus=2-4,5', 'memory.swap.max=0', 'cpu.cfs_quota_us=-1']) {
      expect(() => checkCgroupSetting(good), good).not.toThrow();
    }
    const refused: [string, RegExp][] = [
      ['io.max=8:0 rbps=1048576', /its value contains "="/],
      ['cpu.max', /it has no "="/],
      ['cpu.max=', /its value is empty/],
      ['cpumax=1', /not a cgroup file name/],
      ['../cpu.max=1', /not a cgroup file name/],
      ['/sys/fs/cgroup/cpu.max=1', /not a cgroup file name/],
    ];
    for (const [bad, why] of refused) expect(() => checkCgroupSetting(bad), bad).toThrow(why);
  });

  it('accept a relative parent without "." or ".." (env.rs CgroupInvalidParentPath)', () => {
    for (const good of ['firedeck', 'firedeck/vms', 'machine.slice'])
      expect(() => checkParentCgroup(good)).not.toThrow();
    for (const bad of ['', '/firedeck', '..', '../x', 'a/../b', './a', 'a/./b', 'a//b']) {
      expect(() => checkParentCgroup(bad), bad).toThrow(FiredeckError);
    }
  });

  it('limit a VM to a core per vCPU and its memory plus headroom', () => {
    expect(vmCgroupLimits(2, 2, 256)).toEqual(['cpu.max=200000 100000', `memory.max=${(256 + 64) * 1024 * 1024}`]);
    expect(vmCgroupLimits(1, 1, 2048)).toEqual([
      'cpu.cfs_period_us=100000',
      'cpu.cfs_quota_us=100000',
      `memory.limit_in_bytes=${(2048 + 64) * 1024 * 1024}`,
    ]);
  });
});

describe('cgroup version', () => {
  // /proc/mounts of the three kinds of host, with cgroup trees the jailer would find there (cgroup.rs).
  function host(name: string, lines: (root: string) => string[], v2Controllers: string | null): string {
    const root = path.join(tmp, name);
    fs.mkdirSync(root, { recursive: true });
    if (v2Controllers !== null) fs.writeFileSync(path.join(root, 'cgroup.controllers'), `${v2Controllers}\n`);
    const mounts = path.join(tmp, `${name}.mounts`);
    fs.writeFileSync(mounts, `${['/dev/vda / ext4 rw,relatime 0 0', ...lines(root)].join('\n')}\n`);
    return mounts;
  }

  it("is 2 on a cgroup v2 host, where the jailer's default of 1 finds no hierarchy", () => {
    const mounts = host(
      'v2',
      (root) => [`cgroup2 ${root} cgroup2 rw,nosuid,nodev,noexec,relatime,nsdelegate 0 0`],
      'cpuset cpu io memory pids',
    );
    expect(detectCgroupVersion(['cpu', 'memory'], mounts)).toBe(2);
    expect(vmCgroupDirs(2, ['cpu.max=1 2'], 'firedeck', 'vm-1', mounts)).toEqual([
      path.join(tmp, 'v2', 'firedeck', 'vm-1'),
    ]);
  });

  it('is 1 on a hybrid host whose controllers stay on v1 (cgroup2 mounted for systemd only)', () => {
    const mounts = host(
      'hybrid',
      (root) => [
        `cgroup ${root}/cpu cgroup rw,relatime,cpu,cpuacct 0 0`,
        `cgroup ${root}/memory cgroup rw,relatime,memory 0 0`,
        `cgroup2 ${root}/unified cgroup2 rw,relatime 0 0`,
      ],
      null,
    );
    fs.mkdirSync(path.join(tmp, 'hybrid', 'unified'), { recursive: true });
    fs.writeFileSync(path.join(tmp, 'hybrid', 'unified', 'cgroup.controllers'), 'hugetlb\n');
    expect(detectCgroupVersion(['cpu', 'memory'], mounts)).toBe(1);
    expect(vmCgroupDirs(1, vmCgroupLimits(1, 1, 128), 'fd', 'vm-2', mounts)).toEqual([
      path.join(tmp, 'hybrid', 'cpu', 'fd', 'vm-2'),
      path.join(tmp, 'hybrid', 'memory', 'fd', 'vm-2'),
    ]);
  });

  it('says which controller no hierarchy offers', () => {
    const mounts = host('v2-no-memory', (root) => [`cgroup2 ${root} cgroup2 rw 0 0`], 'cpu pids');
    expect(() => detectCgroupVersion(['cpu', 'memory'], mounts)).toThrow(/offers the controller memory/);
  });

  it("agrees with the kernel about this machine's own hierarchy of the cpu controller", () => {
    // /proc/self/cgroup names a v1 hierarchy by its controllers ("1:cpu:/…"), v2 by "0::/".
    const v1Cpu = fs
      .readFileSync('/proc/self/cgroup', 'utf8')
      .split('\n')
      .some((line) => line.split(':')[1]?.split(',').includes('cpu'));
    expect(detectCgroupVersion(['cpu'])).toBe(v1Cpu ? 1 : 2);
  });
});

describe('jail layout', () => {
  it("places the chroot at <base>/<exec-file-name>/<id>/root, named after a symlink's target", () => {
    const bin = path.join(tmp, 'bin');
    fs.mkdirSync(bin, { recursive: true });
    fs.writeFileSync(path.join(bin, 'firecracker-v1.17.0'), '');
    fs.symlinkSync('firecracker-v1.17.0', path.join(bin, 'firecracker'));
    const layout = jailLayout(options, path.join(bin, 'firecracker'), 'vm-0abc1234');
    expect(layout.execName).toBe('firecracker-v1.17.0');
    expect(layout.chrootDir).toBe(path.join(tmp, 'jails', 'firecracker-v1.17.0', 'vm-0abc1234', 'root'));
    expect(layout.apiSocketOnHost).toBe(path.join(layout.chrootDir, 'run', 'firecracker.socket'));
    expect(layout.pidFile).toBe(path.join(layout.chrootDir, 'firecracker-v1.17.0.pid'));
    // The daemon's record lies beside the chroot, out of the jailed process's sight.
    expect(path.dirname(layout.record)).toBe(layout.jailDir);
    expect(jailLayoutOfSocket(options, layout.apiSocketOnHost)).toEqual(layout);
    expect(jailLayoutOfSocket(options, '/run/firedeck/vm-0abc1234/firecracker.sock')).toBeNull();
  });

  it('links disks in, copies private files, makes the FIFO, and removes the jail giving owners back', async () => {
    const disks = path.join(tmp, 'disks');
    fs.mkdirSync(disks);
    const rootfs = path.join(disks, 'rootfs.img');
    const kernel = path.join(disks, 'vmlinux');
    const config = path.join(disks, 'config.img');
    fs.writeFileSync(rootfs, 'rootfs', { mode: 0o644 });
    fs.writeFileSync(kernel, 'kernel', { mode: 0o644 });
    fs.writeFileSync(config, 'secrets', { mode: 0o600 });
    const layout = jailLayout(options, process.execPath, 'vm-0def5678');
    const plain: JailerOptions = { ...options, netns: 'host' };

    const fifo = await stageJail(
      layout,
      plain,
      [
        { name: 'vmlinux', hostPath: kernel, kind: 'shared' },
        { name: 'rootfs.img', hostPath: rootfs, kind: 'disk' },
        { name: 'config.img', hostPath: config, kind: 'private' },
      ],
      'serial.fifo',
      { cgroupDirs: [], netns: null, hostDevice: null, gracefulStop },
    );
    const inJail = (name: string): fs.Stats => fs.statSync(path.join(layout.chrootDir, name));
    expect(inJail('rootfs.img').ino).toBe(fs.statSync(rootfs).ino);
    expect(inJail('vmlinux').ino).toBe(fs.statSync(kernel).ino);
    // The config drive is the jail's own copy, readable by its uid only.
    expect(inJail('config.img').ino).not.toBe(fs.statSync(config).ino);
    expect(inJail('config.img').mode & 0o777).toBe(0o400);
    expect(fs.readFileSync(path.join(layout.chrootDir, 'config.img'), 'utf8')).toBe('secrets');
    expect(fifo).toBe(path.join(layout.chrootDir, 'serial.fifo'));
    expect(inJail('serial.fifo').isFIFO()).toBe(true);
    expect(inJail('serial.fifo').mode & 0o777).toBe(0o600);
    expect(inJail('run').isDirectory()).toBe(true);
    expect(await readLaunchRecord(layout.record)).toEqual({
      restore: [{ path: rootfs, uid: process.getuid!(), gid: process.getgid!() }],
      cgroupDirs: [],
      netns: null,
      hostDevice: null,
      gracefulStop,
    });

    await cleanupJail(layout, plain);
    expect(fs.existsSync(layout.jailDir)).toBe(false);
    expect(fs.readFileSync(rootfs, 'utf8')).toBe('rootfs');
    expect(fs.readFileSync(kernel, 'utf8')).toBe('kernel');
    await cleanupJail(layout, plain);
  });
});
