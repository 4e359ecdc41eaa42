import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { z } from 'zod';
import { FiredeckError } from '../../../src/shared/errors';
import type { DaemonEvent } from '../../../src/shared/protocol/events';
import {
  IMAGE_BUILD_LOG_TAIL,
  type GoldenImageVersion,
  type ImageBuild,
  type ImageBuildParams,
  type ImageBuildResult,
  type ImageBuildStatus,
  type ImageGcResult,
} from '../../../src/shared/protocol/image';
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
  /** `name@version` → names of the VMs pinned to it, shown beside each version; none when omitted. */
  pinnedBy?: () => ReadonlyMap<string, readonly string[]>;
  /** The builder (tests pass one that needs no root); default `buildImage`. */
  builder?: typeof buildImage;
  now?: () => Date;
}

/** How many ended builds `image.builds` still shows (the newest). */
export const ENDED_BUILDS_KEPT = 20;

/** A build the service tracks: its public record (whose `log` is a ring of the last lines) and its cancel. */
interface TrackedBuild {
  record: ImageBuild;
  controller: AbortController;
}

/**
 * Golden image builds and the catalog's lifecycle (promote, rollback, gc) for the RPC handlers and the CLI.
 * One build per image at a time on this host, also across processes (a lock dir holding the builder's pid).
 * Builds belong to the daemon, not to the caller's connection: `image.builds` lists them, with their log tail.
 */
export class ImageService {
  private readonly builds = new Map<string, TrackedBuild>();

  constructor(private readonly options: ImageServiceOptions) {}

  /** Builds `params.recipe` and answers when it has finished (`image.build`, the CLI). */
  async build(params: z.output<typeof ImageBuildParams>): Promise<z.output<typeof ImageBuildResult>> {
    const { record, done } = this.begin(params);
    const outcome = await done;
    if (outcome instanceof FiredeckError) throw outcome;
    return { buildId: record.buildId, reused: record.reused, image: this.versionInfo(record.recipe, outcome) };
  }

  /**
   * Starts a build and answers at once with its record (`image.build.start`); it runs on in the daemon and
   * reports by `image.build` events. A recipe that does not load, or an image already being built, is refused
   * here, before anything starts.
   */
  start(params: z.output<typeof ImageBuildParams>): ImageBuild {
    const { record } = this.begin(params); // it settles into the record, never rejects
    return { ...record, log: [...record.log] };
  }

  /** Builds running or ended since the daemon started, newest first. */
  listBuilds(recipe?: string): ImageBuild[] {
    return [...this.builds.values()]
      .map((b) => ({ ...b.record, log: [...b.record.log] }))
      .filter((b) => recipe === undefined || b.recipe === recipe)
      .reverse();
  }

  /** Cancels a running build; its work dir is removed by the builder. An ended build is returned as it is. */
  cancel(buildId: string): ImageBuild {
    const build = this.builds.get(buildId);
    if (!build) {
      throw new FiredeckError('not_found', `no build ${buildId} on this host`, {
        hint: 'builds are kept until the daemon restarts; list them with image.builds',
      });
    }
    if (build.record.status === 'running') build.controller.abort();
    return { ...build.record, log: [...build.record.log] };
  }

  /** Starts a build; `done` settles (never rejects) with the version published, or the failure. */
  private begin(params: z.output<typeof ImageBuildParams>): {
    record: ImageBuild;
    done: Promise<string | FiredeckError>;
  } {
    const { catalog } = this.options;
    const recipeDir = resolveRecipeDir(params.recipe, this.options.recipesDir ?? recipesRoot());
    const loaded = loadRecipe(recipeDir);
    const name = loaded.recipe.name;
    const promote = params.promote !== false;
    const build = this.track(name);
    const buildId = build.record.buildId;

    const existing = catalog.findByRecipeHash(name, loaded.hash);
    if (existing !== null && (existing.bootTest !== null || params.skipBootTest === true)) {
      if (promote) catalog.promote(name, existing.version);
      build.record.reused = true;
      this.progress(build, {
        step: 'publish',
        percent: 100,
        line: `reusing ${name} ${existing.version} (same recipe hash)`,
      });
      this.end(build, 'succeeded', existing.version);
      return { record: build.record, done: Promise.resolve(existing.version) };
    }

    fs.mkdirSync(catalog.imageDir(name), { recursive: true });
    let release: () => void;
    try {
      release = takeBuildLock(path.join(catalog.imageDir(name), '.build-lock'), name);
    } catch (err) {
      this.builds.delete(buildId);
      throw err;
    }
    const builder = this.options.builder ?? buildImage;
    const done = (async (): Promise<string | FiredeckError> => {
      try {
        const built = await builder({
          recipeDir,
          outputParent: catalog.imageDir(name),
          cacheDir: this.options.cacheDir,
          signal: build.controller.signal,
          bootTest: params.skipBootTest === true ? undefined : (this.options.bootTest ?? qemuBootTest),
          onProgress: (p) => this.progress(build, p),
        });
        if (promote) catalog.promote(name, built.manifest.version);
        this.end(build, 'succeeded', built.manifest.version);
        return built.manifest.version;
      } catch (err) {
        const e = FiredeckError.from(err, 'build_failed');
        build.record.error = { kind: e.kind, message: e.message, hint: e.hint ?? null };
        const firstLine = e.message.split('\n')[0] ?? null;
        this.end(build, e.kind === 'cancelled' ? 'cancelled' : 'failed', null, firstLine);
        return e;
      } finally {
        release();
      }
    })();
    return { record: build.record, done };
  }

  private track(recipe: string): TrackedBuild {
    const buildId = `build-${randomUUID().slice(0, 8)}`;
    const build: TrackedBuild = {
      controller: new AbortController(),
      record: {
        buildId,
        recipe,
        status: 'running',
        step: 'prepare',
        percent: 0,
        startedAt: this.now(),
        endedAt: null,
        version: null,
        reused: false,
        error: null,
        log: [],
        logLines: 0,
      },
    };
    this.builds.set(buildId, build);
    const ended = [...this.builds.values()].filter((b) => b.record.status !== 'running');
    for (const old of ended.slice(0, Math.max(0, ended.length - ENDED_BUILDS_KEPT))) {
      this.builds.delete(old.record.buildId);
    }
    return build;
  }

  private progress(build: TrackedBuild, p: BuildProgress): void {
    build.record.step = p.step;
    if (p.percent !== null) build.record.percent = p.percent;
    if (p.line !== null) this.logLine(build, p.line);
    this.emitProgress(build.record, p, 'running');
  }

  private logLine(build: TrackedBuild, line: string): void {
    const { log } = build.record;
    log.push(line);
    if (log.length > IMAGE_BUILD_LOG_TAIL) log.splice(0, log.length - IMAGE_BUILD_LOG_TAIL);
    build.record.logLines += 1;
  }

  private end(
    build: TrackedBuild,
    status: Exclude<ImageBuildStatus, 'running'>,
    version: string | null,
    line: string | null = null,
  ): void {
    build.record.status = status;
    build.record.version = version;
    build.record.endedAt = this.now();
    if (status === 'succeeded') build.record.percent = 100;
    if (line !== null) this.logLine(build, line);
    const step = status === 'succeeded' ? 'publish' : build.record.step;
    build.record.step = step;
    this.emitProgress(build.record, { step, percent: status === 'succeeded' ? 100 : null, line }, status);
  }

  private now(): string {
    return (this.options.now?.() ?? new Date()).toISOString();
  }

  list(name?: string): GoldenImageVersion[] {
    const pinned = this.options.pinnedBy?.() ?? new Map<string, readonly string[]>();
    return this.options.catalog
      .list(name)
      .map((v) => ({ ...v, pinnedBy: [...(pinned.get(`${v.name}@${v.version}`) ?? [])] }));
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
  gc(name?: string, keep?: number, options: { dryRun?: boolean } = {}): ImageGcResult {
    const dryRun = options.dryRun === true;
    const versions = this.options.catalog.gc({ name, keep, inUse: this.options.inUse?.(), dryRun });
    if (name !== undefined) return versions;
    const cacheDir = this.options.cacheDir ?? defaultCacheDir();
    const layers = gcLayers({ cacheDir, keep: this.layersOfRecipes(cacheDir), dryRun });
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
    for (const build of this.builds.values()) build.controller.abort();
  }

  private versionInfo(name: string, version: string): GoldenImageVersion {
    const info = this.list(name).find((v) => v.version === version);
    if (!info) throw new FiredeckError('not_found', `image ${name}@${version} is not in the catalog`);
    return info;
  }

  private emitProgress(build: ImageBuild, p: BuildProgress, status: ImageBuildStatus): void {
    const { buildId, recipe } = build;
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
