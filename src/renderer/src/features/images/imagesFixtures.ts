import type { GoldenImageVersion, ImageBuild } from '../../../../shared/protocol/image';

/** A published version of `test` for the images view's tests; `v<N>` was built on day N. */
export const version = (v: string, patch: Partial<GoldenImageVersion> = {}): GoldenImageVersion => ({
  name: 'test',
  version: v,
  current: false,
  builtAt: `2026-12-0${v.slice(1)}T00:00:00Z`,
  recipeHash: 'a'.repeat(64),
  kernelRelease: '6.1.0-1-amd64',
  rootfsBytes: 2 * 1024 ** 3,
  diskBytes: 700 << 20,
  rootfsSha256: 'b'.repeat(64),
  packages: [{ name: 'systemd', version: '252' }],
  npmGlobals: [],
  bootTest: { seconds: 24.5, markers: ['vm'] },
  pinnedBy: [],
  ...patch,
});

/** A build of `test` in its rootfs step, as `image.builds` returns it. */
export const runningBuild = (patch: Partial<ImageBuild> = {}): ImageBuild => ({
  buildId: 'build-0000abcd',
  recipe: 'test',
  status: 'running',
  step: 'rootfs',
  percent: 62,
  startedAt: '2026-12-04T01:00:00Z',
  endedAt: null,
  version: null,
  reused: false,
  error: null,
  log: ['base: reused layer', 'mkfs.ext4 done'],
  logLines: 40,
  ...patch,
});
