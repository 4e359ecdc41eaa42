import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { findExecutable } from '../availability';
import type { VmLaunchSpec } from '../driver';
import {
  QEMU_BINARY,
  QEMU_SANDBOX,
  QEMU_UID_BASE,
  QemuDriver,
  qemuArgs,
  qcow2Backing,
  qemuFds,
  sandboxedQemuArgs,
} from './qemuDriver';

const spec: VmLaunchSpec = {
  id: 'vm-00aa',
  name: 'alice',
  kind: 'cli',
  vcpus: 2,
  memoryMib: 512,
  kernelPath: '/img/vmlinuz',
  initrdPath: '/img/initrd.img',
  kernelArgs: 'console=ttyS0 root=/dev/vda rw',
  rootfsPath: '/state/vms/vm-00aa/root,fs.raw',
  rootfsFormat: 'raw',
  configDrivePath: '/state/vms/vm-00aa/config.img',
  tap: 'fdtap0',
  mac: '02:fd:00:11:22:33',
  runDir: '/run/firedeck/vms/vm-00aa',
};

describe('qemuArgs', () => {
  it('builds a daemonized pc machine with serial and QMP on unix sockets', () => {
    const args = qemuArgs(spec, 'tcg');
    const joined = args.join(' ');
    expect(joined).toContain('-M pc -accel tcg');
    expect(joined).toContain('-m 512 -smp 2');
    expect(args).toContain('-daemonize');
    expect(args).toContain('-no-reboot');
    expect(args).toContain('file=/state/vms/vm-00aa/root,,fs.raw,format=raw,if=virtio,cache=writeback,discard=unmap');
    expect(args).toContain('file=/state/vms/vm-00aa/config.img,format=raw,if=virtio,readonly=on');
    expect(args).toContain('tap,id=net0,ifname=fdtap0,script=no,downscript=no');
    expect(args).toContain('virtio-net-pci,netdev=net0,mac=02:fd:00:11:22:33');
    expect(args).toContain('socket,id=serial0,path=/run/firedeck/vms/vm-00aa/serial.sock,server=on,wait=off');
    expect(args).toContain('unix:/run/firedeck/vms/vm-00aa/qmp.sock,server=on,wait=off');
    expect(args[args.indexOf('-pidfile') + 1]).toBe('/run/firedeck/vms/vm-00aa/qemu.pid');
    expect(args.join(' ')).toContain('-accel tcg -cpu max');
  });

  it('uses the host CPU under KVM and leaves out absent devices', () => {
    const args = qemuArgs(
      { ...spec, tap: null, mac: null, configDrivePath: null, initrdPath: null, rootfsFormat: 'qcow2' },
      'kvm',
    );
    expect(args.join(' ')).toContain('-accel kvm -cpu host');
    expect(args).not.toContain('-netdev');
    expect(args).not.toContain('-initrd');
    expect(args.filter((a) => a === '-drive')).toHaveLength(1);
    expect(args.join(' ')).toContain('format=qcow2');
  });
});

describe('sandboxedQemuArgs', () => {
  it('denies every syscall class, opens no VM file by path and is not daemonized', () => {
    const fds = qemuFds(spec);
    expect(fds).toEqual({ rootfsRw: 3, rootfsRo: 4, kernel: 5, initrd: 6, configDrive: 7, tap: 8, backing: null });
    const args = sandboxedQemuArgs(spec, 'tcg', fds);
    expect(args.slice(-2)).toEqual(['-sandbox', QEMU_SANDBOX]);
    expect(QEMU_SANDBOX).toBe('on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny');
    expect(args).not.toContain('-daemonize');
    expect(args).not.toContain('-runas');
    const joined = args.join(' ');
    for (const file of [spec.rootfsPath, spec.kernelPath, spec.initrdPath!, spec.configDrivePath!]) {
      expect(joined).not.toContain(file.replace(/,/g, ',,'));
    }
    expect(joined).toContain('-kernel /proc/self/fd/5 -initrd /proc/self/fd/6');
    expect(joined).toContain('-add-fd fd=3,set=1,opaque=rootfs-rw -add-fd fd=4,set=1,opaque=rootfs-ro');
    expect(joined).toContain('-add-fd fd=7,set=2,opaque=config-drive');
    expect(args).toContain('file=/dev/fdset/1,format=raw,if=virtio,cache=writeback,discard=unmap');
    expect(args).toContain('file=/dev/fdset/2,format=raw,if=virtio,readonly=on');
    expect(args).toContain('tap,id=net0,fd=8');
    // Its sockets and pid file stay where reconcile looks for them.
    expect(args).toContain('unix:/run/firedeck/vms/vm-00aa/qmp.sock,server=on,wait=off');
    expect(args[args.indexOf('-pidfile') + 1]).toBe('/run/firedeck/vms/vm-00aa/qemu.pid');
  });

  it('numbers only the descriptors a VM has', () => {
    const fds = qemuFds({ ...spec, initrdPath: null, configDrivePath: null, tap: null });
    expect(fds).toEqual({
      rootfsRw: 3,
      rootfsRo: 4,
      kernel: 5,
      initrd: null,
      configDrive: null,
      tap: null,
      backing: null,
    });
    const args = sandboxedQemuArgs({ ...spec, initrdPath: null, configDrivePath: null, tap: null }, 'tcg', fds);
    expect(args).not.toContain('-netdev');
    expect(args).not.toContain('-initrd');
    expect(args.filter((a) => a === '-drive')).toHaveLength(1);
  });

  it('hands a qcow2 overlay its backing image as a read-only fd set, and reads its name from the header', () => {
    const overlay = { ...spec, rootfsFormat: 'qcow2' as const, rootfsPath: '/state/vms/vm-00aa/rootfs.qcow2' };
    const fds = qemuFds(overlay);
    expect(fds.backing).toBe(9);
    const args = sandboxedQemuArgs(overlay, 'tcg', fds);
    expect(args).toContain('fd=9,set=3,opaque=backing');
    expect(args).toContain(
      'file=/dev/fdset/1,format=qcow2,if=virtio,cache=writeback,discard=unmap,backing.file.filename=/dev/fdset/3,backing.driver=raw',
    );
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'firedeck-qcow2-'));
    try {
      fs.writeFileSync(path.join(dir, 'golden.raw'), '');
      execFileSync('qemu-img', [
        'create',
        '-q',
        '-f',
        'qcow2',
        '-b',
        path.join(dir, 'golden.raw'),
        '-F',
        'raw',
        path.join(dir, 'o.qcow2'),
        '1M',
      ]);
      expect(qcow2Backing(path.join(dir, 'o.qcow2'))).toBe(path.join(dir, 'golden.raw'));
      expect(() => qcow2Backing(path.join(dir, 'golden.raw'))).toThrow(/no qcow2 overlay/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('reconcile claims a sandboxed QEMU only as one uid of the sandbox range', () => {
    const binary = findExecutable(QEMU_BINARY);
    if (binary === null) return; // no QEMU on this machine: launchedVm claims nothing anyway
    const driver = new QemuDriver({ qemuAccel: 'tcg' });
    const argv = [binary, ...sandboxedQemuArgs(spec, 'tcg', qemuFds(spec))];
    const u = QEMU_UID_BASE + 7;
    const view = { pid: 1, argv, uids: [u, u, u, u], exe: fs.realpathSync(binary) };
    expect(driver.launchedVm(view, '/run/firedeck/vms')).toBe('vm-00aa');
    expect(driver.launchedVm(view, '/run/other/vms')).toBeNull();
    expect(driver.launchedVm({ ...view, uids: [0, 0, 0, 0] }, '/run/firedeck/vms')).toBeNull();
    expect(driver.launchedVm({ ...view, uids: [65534, 65534, 65534, 65534] }, '/run/firedeck/vms')).toBeNull();
    expect(driver.launchedVm({ ...view, uids: [u, 0, u, u] }, '/run/firedeck/vms')).toBeNull();
    expect(driver.launchedVm({ ...view, argv: argv.slice(0, -2) }, '/run/firedeck/vms')).toBeNull();
  });
});
