import { FiredeckError } from '../../../src/shared/errors';
import type { DriverName } from '../../../src/shared/protocol/daemon';

/** A bootable image as the catalog resolves it. */
export interface ResolvedImage {
  kernelPath: string;
  initrdPath: string | null;
  rootfsPath: string;
  /** The uncompressed kernel Firecracker boots; absent or null when the image has none. */
  firecrackerKernelPath?: string | null;
  /** When known, the VM records `name@version` so that it keeps booting the kernel its rootfs was cloned with. */
  name?: string;
  version?: string;
}

export interface ImageResolver {
  resolve(name: string): Promise<ResolvedImage>;
}

/** QEMU boots the image's own Debian kernel and initrd; Firecracker needs the uncompressed kernel built with it. */
export function kernelFor(driver: DriverName, image: ResolvedImage): { kernelPath: string; initrdPath: string | null } {
  if (driver === 'qemu') return { kernelPath: image.kernelPath, initrdPath: image.initrdPath };
  if (image.firecrackerKernelPath === undefined || image.firecrackerKernelPath === null) {
    const ref = image.name === undefined ? 'the image' : `image ${image.name}@${image.version ?? 'current'}`;
    throw new FiredeckError('invalid_state', `${ref} has no Firecracker kernel`, {
      hint: 'set FIREDECK_FIRECRACKER_KERNEL to an uncompressed vmlinux and rebuild the image, or use driver qemu',
    });
  }
  return { kernelPath: image.firecrackerKernelPath, initrdPath: null };
}
