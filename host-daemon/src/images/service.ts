import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { z } from 'zod';
import { FiredeckError } from '../../../src/shared/errors';
import type { DaemonEvent } from '../../../src/shared/protocol/events';
import type { GoldenImageVersion, ImageBuildParams, ImageBuildResult } from '../../../src/shared/protocol/image';
import { qemuBootTest } from './bootTest';
import { buildImage, defaultCacheDir, type BootTester, type BuildProgress } from './builder';
import type { ImageCatalog } from './catalog';
import { gcLayers, layersOf } from './layerCache';
import { tryPidLock } from '../system/pidLock';
import { loadRecipe, recipesRoot, resolveRecipeDir } from './recipe';

export interface ImageServiceOptions {
  catalog: ImageCatalog;
  /** Daemon events (`image.build` progress); the CLI passes a printer instead. */
  emit: (event: DaemonEvent) => void;
  recipesDir?: string;
  cacheDir?: string;
  bootTest?: BootTester;
  /** `name@version` refs still needed by VMs (e.g. qcow2 backing files); never collected. */
  inUse?: () => ReadonlySet<string>;
}

/**
 * Golden image builds and the catalog's lifecycle (promote, rollback, gc) for the RPC handlers and the CLI.
 * One build per image at a time on this host, also across processes (a lock dir holding the builder's pid).
 */
export class ImageService {
  private readonly running = new Map<string, AbortController>();

  constructor(private readonly options: ImageServiceOptions) {}

  async build(params: z.output<typeof ImageBuildParams>): Promise<z.output<typeof ImageBuildResult>> {
    const { catalog } = this.options;
    const recipeDir = resolveRecipeDir(params.recipe, this.options.recipesDir ?? recipesRoot());
    const loaded = loadRecipe(recipeDir);
    const name = loaded.recipe.name;
    const buildId = `build-${randomUUID().slice(0, 8)}`;
    const promote = params.promote !== false;

    const existing = catalog.findByRecipeHash(name, loaded.hash);
    if (existing !== null && (existing.bootTest !== null || params.skipBootTest === true)) {
      if (promote) catalog.promote(name, existing.version);
      this.emitProgress(
        buildId,
        name,
        { step: 'publish', percent: 100, line: `reusing ${name} ${existing.version} (same recipe hash)` },
        'succeeded',
      );
      return { buildId, reused: true, image: this.versionInfo(name, existing.version) };
    }

    fs.mkdirSync(catalog.imageDir(name), { recursive: true });
    const release = takeBuildLock(path.join(catalog.imageDir(name), '.build-lock'), name);
    const controller = new AbortController();
    this.running.set(buildId, controller);
    let last: BuildProgress = { step: 'prepare', percent: 0, line: null };
    try {
      const built = await buildImage({
        recipeDir,
        outputParent: catalog.imageDir(name),
        cacheDir: this.options.cacheDir,
        signal: controller.signal,
        bootTest: params.skipBootTest === true ? undefined : (this.options.bootTest ?? qemuBootTest),
        onProgress: (p) => {
          last = p;
          this.emitProgress(buildId, name, p, 'running');
        },
      });
      if (promote) catalog.promote(name, built.manifest.version);
      this.emitProgress(buildId, name, { step: 'publish', percent: 100, line: null }, 'succeeded');
      return { buildId, reused: false, image: this.versionInfo(name, built.manifest.version) };
    } catch (err) {
      const e = FiredeckError.from(err, 'build_failed');
      this.emitProgress(
        buildId,
        name,
        { step: last.step, percent: null, line: e.message.split('\n')[0] ?? null },
        'failed',
      );
      throw e;
    } finally {
      this.running.delete(buildId);
      release();
    }
  }

  list(name?: string): GoldenImageVersion[] {
    return this.options.catalog.list(name);
  }

  promote(name: string, version: string): GoldenImageVersion {
    this.options.catalog.promote(name, version);
    return this.versionInfo(name, version);
  }

  rollback(name: string): GoldenImageVersion {
    const image = this.options.catalog.rollback(name);
    return this.versionInfo(name, image.version);
  }

  /**
   * Removes old image versions (see `ImageCatalog.gc`). Without a name it also removes cached build layers
   * that no recipe in the recipes dir needs and no build has reused for `LAYER_GRACE_MS`.
   */
  gc(name?: string, keep?: number): { removed: string[]; freedBytes: number } {
    const versions = this.options.catalog.gc({ name, keep, inUse: this.options.inUse?.() });
    if (name !== undefined) return versions;
    const cacheDir = this.options.cacheDir ?? defaultCacheDir();
    const layers = gcLayers({ cacheDir, keep: this.layersOfRecipes(cacheDir) });
    return {
      removed: [...versions.removed, ...layers.removed],
      freedBytes: versions.freedBytes + layers.freedBytes,
    };
  }

  /** Layers the recipes in the recipes dir build from; a recipe that does not load keeps none (the grace does). */
  private layersOfRecipes(cacheDir: string): Set<string> {
    const root = this.options.recipesDir ?? recipesRoot();
    const keep = new Set<string>();
    for (const entry of fs.readdirSync(root, { withFileTypes: true })) {
      if (!entry.isDirectory() || !fs.existsSync(path.join(root, entry.name, 'recipe.json'))) continue;
      try {
        for (const file of layersOf(cacheDir, loadRecipe(path.join(root, entry.name)))) keep.add(file);
      } catch {
        // An invalid recipe cannot be built either; its old layers age out like any other.
      }
    }
    return keep;
  }

  /** Aborts running builds (daemon shutdown); their work dirs are removed by the builder. */
  cancelAll(): void {
    for (const controller of this.running.values()) controller.abort();
  }

  private versionInfo(name: string, version: string): GoldenImageVersion {
    const info = this.options.catalog.list(name).find((v) => v.version === version);
    if (!info) throw new FiredeckError('not_found', `image ${name}@${version} is not in the catalog`);
    return info;
  }

  private emitProgress(
    buildId: string,
    recipe: string,
    p: BuildProgress,
    status: 'running' | 'succeeded' | 'failed',
  ): void {
    this.options.emit({ type: 'image.build', buildId, recipe, step: p.step, percent: p.percent, line: p.line, status });
  }
}

function takeBuildLock(lockDir: string, name: string): () => void {
  const lock = tryPidLock(lockDir);
  if (lock.taken) return lock.release;
  throw new FiredeckError('conflict', `image ${name} is already being built (pid ${lock.owner || 'unknown'})`, {
    hint: 'wait for that build to finish',
  });
}
