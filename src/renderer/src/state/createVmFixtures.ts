import type { DaemonInfo } from '../../../shared/protocol/daemon';
import type { GoldenImageVersion } from '../../../shared/protocol/image';
import type { CreateVmChoices } from './createVmDraft';

/** Test data of the create form: a host with 3000 MiB memory and 20000 MiB disk free, QEMU only, two images. */
const MIB = 1024 * 1024;

export const version = (name: string, v: string, current: boolean, rootfsMib: number): GoldenImageVersion => ({
  name,
  version: v,
  current,
  builtAt: `2026-12-0${v.slice(-1)}T00:00:00Z`,
  recipeHash: 'a'.repeat(64),
  kernelRelease: '6.1.0-50-amd64',
  rootfsBytes: rootfsMib * MIB,
  diskBytes: rootfsMib * MIB,
  rootfsSha256: 'b'.repeat(64),
  packages: [],
  npmGlobals: [],
  bootTest: null,
  pinnedBy: [],
});

export const info = (over: Partial<DaemonInfo> = {}): DaemonInfo => ({
  version: '0.1.0',
  protocolVersion: 1,
  hostname: 'rig',
  pid: 1,
  startedAt: '2026-12-04T00:00:00Z',
  drivers: [
    {
      name: 'firecracker',
      available: false,
      binary: null,
      version: null,
      accel: null,
      reason: 'no /dev/kvm',
      gracefulStop: { support: 'unknown', reason: '' },
    },
    {
      name: 'qemu',
      available: true,
      binary: '/usr/bin/qemu-system-x86_64',
      version: '7.2',
      accel: 'tcg',
      reason: null,
      gracefulStop: { support: 'supported', reason: '' },
    },
  ],
  defaultDriver: 'qemu',
  resources: {
    memoryTotalBytes: 8192 * MIB,
    memoryAvailableBytes: 3000 * MIB,
    diskPath: '/var/lib/firedeck',
    diskTotalBytes: 100_000 * MIB,
    diskFreeBytes: 20_000 * MIB,
  },
  ...over,
});

export const choices = (over: Partial<CreateVmChoices> = {}): CreateVmChoices => ({
  hostName: 'rig',
  info: info(),
  images: [version('test', 'v1', false, 512), version('test', 'v2', true, 1024), version('cli', 'v1', true, 2048)],
  ...over,
});
