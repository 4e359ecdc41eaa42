import { z } from 'zod';
import { GracefulStop } from './daemon';

/** Name of a golden image (and of its recipe under `images/`). */
export const ImageName = z.string().regex(/^[a-z][a-z0-9-]{0,31}$/, 'image names are 1-32 of a-z, 0-9, "-"');
/** A published version: `<UTC yyyymmddThhmmss>-<first 12 hex of the recipe hash>` (or a recipe hash in caches). */
export const ImageVersion = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,79}$/, 'not an image version');
/** `name` (the current version) or `name@version`. */
export const ImageRef = z
  .string()
  .regex(/^[a-z][a-z0-9-]{0,31}(@[A-Za-z0-9][A-Za-z0-9._-]{0,79})?$/, 'image ref is name or name@version');

export const ImagePackage = z.object({ name: z.string(), version: z.string() });
export type ImagePackage = z.infer<typeof ImagePackage>;

/** A package npm installed into the image: where (its name there), its version and the integrity npm checked. */
export const NpmInstalledPackage = z.object({
  name: z.string(),
  version: z.string(),
  /** `sha512-…` (SRI) of the tarball; null when the registry gave none. Absent in manifests of older builds. */
  integrity: z.string().nullable().optional(),
});
export type NpmInstalledPackage = z.infer<typeof NpmInstalledPackage>;

/** `manifest.json` of a published golden image version: what it was built from and what it holds. */
export const ImageManifest = z.object({
  name: ImageName,
  version: ImageVersion,
  recipeHash: z.string().regex(/^[0-9a-f]{64}$/),
  builderVersion: z.number().int(),
  suite: z.string(),
  builtAt: z.string(),
  buildSeconds: z.number(),
  kernel: z.object({
    /** `uname -r` of the image's kernel, e.g. 6.1.0-50-amd64. */
    release: z.string(),
    /** Debian package and version the kernel came from. */
    package: z.string(),
    packageVersion: z.string(),
    file: z.literal('vmlinuz'),
    initrd: z.literal('initrd.img'),
    /** An uncompressed kernel for Firecracker, when one was configured for the build. */
    firecrackerKernel: z.string().nullable(),
    /**
     * Whether Firecracker's Ctrl-Alt-Del reaches a guest of that kernel, read from its config at build time;
     * null without a Firecracker kernel, absent in manifests of older builds.
     */
    firecrackerGracefulStop: GracefulStop.nullable().optional(),
  }),
  rootfs: z.object({
    file: z.literal('rootfs.ext4'),
    sizeBytes: z.number().int(),
    sha256: z.string().regex(/^[0-9a-f]{64}$/),
  }),
  packages: z.array(ImagePackage),
  /** The recipe's npm globals as installed. */
  npmGlobals: z.array(NpmInstalledPackage),
  /** What they pulled in (platform packages, dependencies); absent in manifests of older builds. */
  npmDependencies: z.array(NpmInstalledPackage).optional(),
  readiness: z.array(z.string()),
  /** How the boot test went; null when the build ran without one. */
  bootTest: z.object({ seconds: z.number(), markers: z.array(z.string()) }).nullable(),
});
export type ImageManifest = z.infer<typeof ImageManifest>;

/** One version in the catalog, as `image.list` returns it. */
export const GoldenImageVersion = z.object({
  name: ImageName,
  version: ImageVersion,
  current: z.boolean(),
  builtAt: z.string(),
  recipeHash: z.string(),
  kernelRelease: z.string(),
  rootfsBytes: z.number().int(),
  /** Bytes the version's files occupy on disk (sparse). */
  diskBytes: z.number().int(),
  /** sha256 of the rootfs, from the manifest. */
  rootfsSha256: z.string(),
  packages: z.array(ImagePackage),
  npmGlobals: z.array(ImagePackage),
  /** The manifest's boot test (seconds, markers reached); null when the version was built without one. */
  bootTest: ImageManifest.shape.bootTest,
  /** Names of the VMs (not destroyed) pinned to this version: `gc` keeps it while any is left. */
  pinnedBy: z.array(z.string()),
});
export type GoldenImageVersion = z.infer<typeof GoldenImageVersion>;

export const ImageBuildParams = z
  .object({
    recipe: ImageName,
    /** Skip the boot test (faster; for development only). */
    skipBootTest: z.boolean().optional(),
    /** Make the new version current when it passes (default true). */
    promote: z.boolean().optional(),
  })
  .strict();
export const ImageBuildResult = z.object({
  buildId: z.string(),
  /** True when an identical version (same recipe hash) was already published and nothing was built. */
  reused: z.boolean(),
  image: GoldenImageVersion,
});

export const ImageListParams = z.object({ name: ImageName.optional() }).strict();
export const ImagePromoteParams = z.object({ name: ImageName, version: ImageVersion }).strict();
export const ImageRollbackParams = z.object({ name: ImageName }).strict();
export const ImageGcParams = z
  .object({
    name: ImageName.optional(),
    /** Versions to keep per image besides the current one (default 2). */
    keep: z.number().int().min(0).max(100).optional(),
  })
  .strict();
/** What `image.gc` removed, or, from `image.gc.plan`, what it would remove now (nothing is removed then). */
export const ImageGcResult = z.object({ removed: z.array(z.string()), freedBytes: z.number().int() });
export type ImageGcResult = z.infer<typeof ImageGcResult>;

/** The steps of a build, in order; a build's `step` is one of them. */
export const IMAGE_BUILD_STEPS = [
  'prepare',
  'base',
  'npm',
  'files',
  'checks',
  'rootfs',
  'boot-test',
  'publish',
] as const;
export const ImageBuildStep = z.enum(IMAGE_BUILD_STEPS);
export type ImageBuildStep = z.infer<typeof ImageBuildStep>;
export const ImageBuildStatus = z.enum(['running', 'succeeded', 'failed', 'cancelled']);
export type ImageBuildStatus = z.infer<typeof ImageBuildStatus>;
/** How many of a build's last log lines the daemon keeps for `image.builds` (a reopened app's backlog). */
export const IMAGE_BUILD_LOG_TAIL = 500;

/**
 * A build the daemon runs or ran since it started (`image.build.start`, `image.build`): it goes on when the
 * caller's connection closes, so a reopened app finds it here, with its step and the tail of its log.
 */
export const ImageBuild = z.object({
  buildId: z.string(),
  recipe: ImageName,
  status: ImageBuildStatus,
  step: ImageBuildStep,
  /** Overall progress when known, else null. */
  percent: z.number().nullable(),
  startedAt: z.string(),
  endedAt: z.string().nullable(),
  /** The version it published (or reused); null until it succeeded. */
  version: ImageVersion.nullable(),
  /** True when an identical version (same recipe hash) was already published and nothing was built. */
  reused: z.boolean(),
  error: z.object({ kind: z.string(), message: z.string(), hint: z.string().nullable() }).nullable(),
  /** The last `IMAGE_BUILD_LOG_TAIL` log lines, oldest first; later lines arrive as `image.build` events. */
  log: z.array(z.string()),
  /** How many log lines the build has written in all (`log` is the tail of them). */
  logLines: z.number().int(),
});
export type ImageBuild = z.infer<typeof ImageBuild>;

export const ImageBuildsParams = z.object({ recipe: ImageName.optional() }).strict();
export const ImageBuildRef = z.object({ buildId: z.string().regex(/^build-[0-9a-f]{8}$/, 'not a build id') }).strict();
