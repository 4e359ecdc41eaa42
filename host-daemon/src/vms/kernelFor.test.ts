import { describe, expect, it } from 'vitest';
import { kernelFor } from './bootImage';

const image = { kernelPath: '/img/vmlinuz', initrdPath: '/img/initrd.img', rootfsPath: '/img/rootfs.ext4' };

describe('kernelFor', () => {
  it("boots QEMU from the image's own kernel and initrd", () => {
    expect(kernelFor('qemu', image)).toEqual({ kernelPath: '/img/vmlinuz', initrdPath: '/img/initrd.img' });
  });

  it('boots Firecracker from the uncompressed kernel recorded with the image, without the initrd', () => {
    expect(kernelFor('firecracker', { ...image, firecrackerKernelPath: '/img/vmlinux' })).toEqual({
      kernelPath: '/img/vmlinux',
      initrdPath: null,
    });
  });

  it('refuses Firecracker for an image built without one, saying how to fix it', () => {
    expect(() => kernelFor('firecracker', { ...image, name: 'cli', version: 'v1' })).toThrow(
      /image cli@v1 has no Firecracker kernel/,
    );
  });
});
