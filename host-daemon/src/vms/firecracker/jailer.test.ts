import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FiredeckError } from '../../../../src/shared/errors';
import {
  cleanupJail,
  JAILED_API_SOCKET,
  jailerArgs,
  jailLayout,
  jailLayoutOfSocket,
  stageJail,
  type JailerOptions,
} from './jailer';

// The jailer itself needs root, cgroups and the release binary; what the driver does around it (its command
// line, the chroot it builds and removes) runs here on real files.
let tmp: string;
let options: JailerOptions;

beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'fdt-jail-'));
  options = {
    binary: 'jailer',
    uid: process.getuid!(),
    gid: process.getgid!(),
    chrootBaseDir: path.join(tmp, 'jails'),
    cgroupVersion: 2,
    cgroups: ['cpu.max=50000 100000', 'memory.max=536870912'],
    netnsFor: (id) => `/var/run/netns/${id}`,
    daemonize: true,
    newPidNs: true,
  };
});

afterAll(() => {
  fs.rmSync(tmp, { recursive: true, force: true });
});

describe('jailer', () => {
  it('builds the documented command line and forwards the API socket to Firecracker', () => {
    expect(jailerArgs(options, '/usr/local/bin/firecracker', 'vm-00c0ffee')).toEqual([
      '--id',
      'vm-00c0ffee',
      '--exec-file',
      '/usr/local/bin/firecracker',
      '--uid',
      String(options.uid),
      '--gid',
      String(options.gid),
      '--chroot-base-dir',
      options.chrootBaseDir,
      '--cgroup-version',
      '2',
      '--cgroup',
      'cpu.max=50000 100000',
      '--cgroup',
      'memory.max=536870912',
      '--netns',
      '/var/run/netns/vm-00c0ffee',
      '--daemonize',
      '--new-pid-ns',
      '--',
      '--api-sock',
      JAILED_API_SOCKET,
    ]);
  });

  it('refuses what the jailer would refuse', () => {
    expect(() => jailerArgs(options, '/usr/bin/qemu', 'vm-1')).toThrow(FiredeckError);
    expect(() => jailerArgs({ ...options, uid: -1 }, '/usr/bin/firecracker', 'vm-1')).toThrow(/non-negative/);
    expect(() => jailerArgs({ ...options, cgroups: ['nonsense'] }, '/usr/bin/firecracker', 'vm-1')).toThrow(/cgroup/);
  });

  it('places the chroot at <base>/<exec-file-name>/<id>/root and finds it again from the socket', () => {
    const layout = jailLayout(options, '/opt/fc/firecracker-v1.17', 'vm-0abc1234');
    expect(layout.chrootDir).toBe(path.join(tmp, 'jails', 'firecracker-v1.17', 'vm-0abc1234', 'root'));
    expect(layout.apiSocketOnHost).toBe(path.join(layout.chrootDir, 'run', 'firecracker.socket'));
    expect(layout.pidFile).toBe(path.join(layout.chrootDir, 'firecracker-v1.17.pid'));
    expect(jailLayoutOfSocket(options, layout.apiSocketOnHost)).toEqual(layout);
    expect(jailLayoutOfSocket(options, '/run/firedeck/vm-0abc1234/firecracker.sock')).toBeNull();
  });

  it('hard-links the VM files in, and removes the jail without touching the originals', async () => {
    const disks = path.join(tmp, 'disks');
    fs.mkdirSync(disks);
    const rootfs = path.join(disks, 'rootfs.img');
    const kernel = path.join(disks, 'vmlinux');
    fs.writeFileSync(rootfs, 'rootfs');
    fs.writeFileSync(kernel, 'kernel');
    // No cgroups: cleanup would otherwise rmdir under /sys/fs/cgroup, which is the jailer's (root) business.
    const plain: JailerOptions = { ...options, cgroups: [] };
    const layout = jailLayout(plain, '/usr/bin/firecracker', 'vm-0def5678');

    const inJail = await stageJail(layout, plain, [
      { name: 'vmlinux', hostPath: kernel, writable: false, linkOnly: false },
      { name: 'rootfs.img', hostPath: rootfs, writable: true, linkOnly: true },
    ]);
    expect(inJail).toEqual({ vmlinux: '/vmlinux', 'rootfs.img': '/rootfs.img' });
    expect(fs.statSync(path.join(layout.chrootDir, 'rootfs.img')).ino).toBe(fs.statSync(rootfs).ino);
    expect(fs.statSync(path.join(layout.chrootDir, 'run')).isDirectory()).toBe(true);
    // The jailed Firecracker cannot see the manifest that lets cleanup restore owners.
    expect(path.dirname(layout.manifest)).toBe(layout.jailDir);

    await cleanupJail(layout, plain);
    expect(fs.existsSync(layout.jailDir)).toBe(false);
    expect(fs.readFileSync(rootfs, 'utf8')).toBe('rootfs');
    expect(fs.readFileSync(kernel, 'utf8')).toBe('kernel');
    await cleanupJail(layout, plain);
  });
});
