import { describe, expect, it } from 'vitest';
import type { VmLaunchSpec } from '../driver';
import { qemuArgs } from './qemuDriver';

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
