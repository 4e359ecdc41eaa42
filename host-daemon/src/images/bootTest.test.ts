import { describe, expect, it } from 'vitest';
import { QEMU_SANDBOX } from '../system/uidPool';
import { BOOT_TEST_FDS, bootTestPaths, confinedBootTestArgs } from './bootTest';

describe('confinedBootTestArgs', () => {
  const dir = '/tmp/firedeck-boottest-abc';
  const args = confinedBootTestArgs({ dir, memoryMiB: 512, cpus: 2, append: 'console=ttyS0 root=/dev/vda' });

  it('ends in -sandbox with every class denied, and neither daemonizes nor calls -runas', () => {
    expect(args.slice(-2)).toEqual(['-sandbox', QEMU_SANDBOX]);
    expect(args).not.toContain('-runas');
    expect(args).not.toContain('-daemonize');
  });

  it('names no file by path outside its temp dir: the image comes as descriptors', () => {
    const p = bootTestPaths(dir);
    expect(args[args.indexOf('-kernel') + 1]).toBe(`/proc/self/fd/${BOOT_TEST_FDS.kernel}`);
    expect(args[args.indexOf('-initrd') + 1]).toBe(`/proc/self/fd/${BOOT_TEST_FDS.initrd}`);
    expect(args).toContain(`fd=${BOOT_TEST_FDS.rootfs},set=1,opaque=rootfs-ro`);
    expect(args).toContain(
      `file=${p.overlay},format=qcow2,if=virtio,backing.file.filename=/dev/fdset/1,backing.driver=raw`,
    );
    expect(args.indexOf('-add-fd')).toBeLessThan(args.indexOf('-drive'));
    // Every absolute path in the argv (but the guest's kernel command line) is in the temp dir, a descriptor, or
    // the fd set.
    const paths = args
      .filter((_a, i) => args[i - 1] !== '-append')
      .flatMap((a) => [...a.matchAll(/(?:^|[=,])(\/[^,]+)/g)].map((m) => m[1]!));
    expect(paths.length).toBeGreaterThan(5);
    for (const file of paths)
      expect(file).toMatch(/^(\/tmp\/firedeck-boottest-abc\/|\/proc\/self\/fd\/\d+$|\/dev\/fdset\/1$)/);
  });

  it('doubles commas in its temp dir’s name', () => {
    const odd = confinedBootTestArgs({ dir: '/tmp/a,b', memoryMiB: 256, cpus: 1, append: '' });
    expect(odd).toContain('file=/tmp/a,,b/config.ext4,format=raw,if=virtio,readonly=on');
  });
});
