import fs from 'node:fs';
import path from 'node:path';
import type { LoadedRecipe } from './recipe';

/**
 * The builder's cached layers (`<cacheDir>/layers/*.tar`): a base layer per suite and package set, an npm
 * layer per base and npm globals. A layer's mtime records its last use, so `gcLayers` can tell a layer that
 * only an old recipe needed from one a build outside the recipes dir still reuses.
 */

/** Layers unused for this long are collected when no current recipe needs them. */
export const LAYER_GRACE_MS = 7 * 24 * 3600 * 1000;

export function layersDir(cacheDir: string): string {
  return path.join(cacheDir, 'layers');
}

export function baseLayerFile(cacheDir: string, loaded: LoadedRecipe): string {
  return path.join(layersDir(cacheDir), `base-${loaded.recipe.suite}-${loaded.baseHash.slice(0, 16)}.tar`);
}

export function npmLayerFile(cacheDir: string, loaded: LoadedRecipe): string {
  return path.join(layersDir(cacheDir), `npm-${loaded.npmHash.slice(0, 16)}.tar`);
}

/** What the npm step installed into an npm layer (versions, integrity), kept beside it for the manifest. */
export function npmInventoryFile(layer: string): string {
  return layer.replace(/\.tar$/, '.json');
}

/** The layers a recipe's build reads (the npm layer only when it installs npm globals). */
export function layersOf(cacheDir: string, loaded: LoadedRecipe): string[] {
  const files = [baseLayerFile(cacheDir, loaded)];
  if (loaded.recipe.npmGlobals.length > 0) files.push(npmLayerFile(cacheDir, loaded));
  return files;
}

/** Records that a build reused `file` now (its mtime), so a collection within the grace period keeps it. */
export function markLayerUsed(file: string, now: Date = new Date()): void {
  fs.utimesSync(file, now, now);
}

/**
 * Removes layer tars that no recipe in `keep` needs and that no build has used within `graceMs`. Work dirs of
 * layers being built (`.layer-*`) are the builder's to clean up and are never touched here.
 */
export function gcLayers(options: {
  cacheDir: string;
  keep: ReadonlySet<string>;
  graceMs?: number;
  now?: number;
  /** Only say what would be removed. */
  dryRun?: boolean;
}): {
  removed: string[];
  freedBytes: number;
} {
  const dir = layersDir(options.cacheDir);
  const graceMs = options.graceMs ?? LAYER_GRACE_MS;
  const now = options.now ?? Date.now();
  const removed: string[] = [];
  let freedBytes = 0;
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { removed, freedBytes };
    throw err;
  }
  for (const name of names.sort()) {
    if (!/^(base|npm)-.+\.tar$/.test(name)) continue;
    const file = path.join(dir, name);
    if (options.keep.has(file)) continue;
    let stat: fs.Stats;
    try {
      stat = fs.statSync(file);
    } catch {
      continue; // removed meanwhile
    }
    if (!stat.isFile() || now - stat.mtimeMs < graceMs) continue;
    if (options.dryRun !== true) {
      fs.rmSync(file, { force: true });
      if (name.startsWith('npm-')) fs.rmSync(npmInventoryFile(file), { force: true });
    }
    freedBytes += stat.blocks * 512;
    removed.push(`layer ${name}`);
  }
  return { removed, freedBytes };
}
