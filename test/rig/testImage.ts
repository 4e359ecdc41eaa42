import fs from 'node:fs';
import path from 'node:path';
import { buildImage, defaultCacheDir, type BuildProgress } from '../../host-daemon/src/images/builder';
import { ImageCatalog, readManifest, type ResolvedImage } from '../../host-daemon/src/images/catalog';
import { loadRecipe, recipesRoot } from '../../host-daemon/src/images/recipe';
import { tryPidLock } from '../../host-daemon/src/system/pidLock';
import type { ImageManifest } from '../../src/shared/protocol/image';

/** The small bootable image the suites use, built by the project's own pipeline. */
export interface TestImage {
  dir: string;
  kernelPath: string;
  initrdPath: string;
  rootfsPath: string;
  manifest: ImageManifest;
}

export interface EnsureOptions {
  /** Build progress; by default step starts are printed to stderr so a first (slow) build is visible. */
  onProgress?: (p: BuildProgress) => void;
  recipeDir?: string;
}

/**
 * Builds the `test` image, or reuses the build cached under
 * `${FIREDECK_CACHE_DIR:-/var/cache/firedeck}/images/<name>/<recipe hash>/`. Safe to call from several
 * processes at once: one builds, the others wait for its lock.
 */
export async function ensureTestImage(options: EnsureOptions = {}): Promise<TestImage> {
  const recipeDir = options.recipeDir ?? path.join(recipesRoot(), 'test');
  const loaded = loadRecipe(recipeDir);
  const parent = path.join(defaultCacheDir(), 'images', loaded.recipe.name);
  const dir = path.join(parent, loaded.hash);
  fs.mkdirSync(parent, { recursive: true });
  const cached = fromDir(dir);
  if (cached) return cached;

  const release = await acquireLock(path.join(parent, `.lock-${loaded.hash.slice(0, 16)}`));
  try {
    const again = fromDir(dir);
    if (again) return again;
    const onProgress =
      options.onProgress ??
      ((p: BuildProgress): void => {
        if (p.line === null) process.stderr.write(`[test image] ${p.step} (${p.percent ?? '?'}%)\n`);
      });
    const built = await buildImage({ recipeDir, outputParent: parent, version: loaded.hash, onProgress });
    pruneOldBuilds(parent, 2);
    return built;
  } finally {
    release();
  }
}

/**
 * Places the test image into a daemon's catalog (`${stateDir}/images/test/<version>/`, made current) with
 * `cp --reflink=auto --sparse=always`, and returns it resolved as the daemon will resolve it.
 */
export async function installTestImage(stateDir: string, image?: TestImage): Promise<ResolvedImage> {
  const source = image ?? (await ensureTestImage());
  return new ImageCatalog(stateDir).importVersion(source.manifest.name, source.dir);
}

/** Keeps the `keep` newest cached builds (older recipe versions) so the cache does not grow without bound. */
function pruneOldBuilds(parent: string, keep: number): void {
  const builds = fs
    .readdirSync(parent)
    .filter((n) => /^[0-9a-f]{64}$/.exec(n) !== null)
    .map((n) => ({ dir: path.join(parent, n), manifest: readManifest(path.join(parent, n)) }))
    .sort((a, b) => (b.manifest?.builtAt ?? '').localeCompare(a.manifest?.builtAt ?? ''));
  for (const old of builds.slice(keep)) fs.rmSync(old.dir, { recursive: true, force: true });
}

function fromDir(dir: string): TestImage | null {
  const manifest = readManifest(dir);
  if (manifest === null) return null;
  return {
    dir,
    kernelPath: path.join(dir, manifest.kernel.file),
    initrdPath: path.join(dir, manifest.kernel.initrd),
    rootfsPath: path.join(dir, manifest.rootfs.file),
    manifest,
  };
}

/** A lock dir holding its owner's pid; a dead owner's lock is taken over. Waits by watching the parent dir. */
async function acquireLock(lockDir: string): Promise<() => void> {
  const deadline = Date.now() + 30 * 60_000;
  for (;;) {
    const lock = tryPidLock(lockDir);
    if (lock.taken) return lock.release;
    const owner = lock.owner;
    if (Date.now() > deadline) throw new Error(`test image: lock ${lockDir} held by pid ${owner} for 30 minutes`);
    await new Promise<void>((resolve) => {
      const watcher = fs.watch(path.dirname(lockDir), () => {
        if (!fs.existsSync(lockDir)) done();
      });
      // A watch can miss a removal that raced its setup, and a dead owner sends no event: re-check now and then.
      const timer = setTimeout(done, 2000);
      function done(): void {
        clearTimeout(timer);
        watcher.close();
        resolve();
      }
    });
  }
}
