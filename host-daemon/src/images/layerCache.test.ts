import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ImageCatalog } from './catalog';
import {
  baseLayerFile,
  gcLayers,
  LAYER_GRACE_MS,
  layersDir,
  layersOf,
  markLayerUsed,
  npmLayerFile,
} from './layerCache';
import { loadRecipe } from './recipe';
import { ImageService } from './service';

const RECIPES = path.resolve(__dirname, '../../../images');
const DAY = 24 * 3600 * 1000;

let tmp: string;
let cacheDir: string;

beforeEach(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'firedeck-layers-'));
  cacheDir = path.join(tmp, 'cache');
  fs.mkdirSync(layersDir(cacheDir), { recursive: true });
});
afterEach(() => {
  fs.rmSync(tmp, { recursive: true, force: true });
});

/** A layer tar of `bytes` real bytes, last used `ageMs` ago. */
function layer(name: string, ageMs: number, bytes = 8192): string {
  const file = path.join(layersDir(cacheDir), name);
  fs.writeFileSync(file, Buffer.alloc(bytes, 1));
  const when = new Date(Date.now() - ageMs);
  fs.utimesSync(file, when, when);
  return file;
}

describe('build layer cache', () => {
  it('names layers by suite and hash, the npm layer only for recipes with npm globals', () => {
    const test = loadRecipe(path.join(RECIPES, 'test'));
    const cli = loadRecipe(path.join(RECIPES, 'cli'));
    expect(layersOf(cacheDir, test)).toEqual([baseLayerFile(cacheDir, test)]);
    expect(path.basename(baseLayerFile(cacheDir, test))).toBe(`base-bookworm-${test.baseHash.slice(0, 16)}.tar`);
    expect(layersOf(cacheDir, cli)).toEqual([baseLayerFile(cacheDir, cli), npmLayerFile(cacheDir, cli)]);
    expect(path.basename(npmLayerFile(cacheDir, cli))).toBe(`npm-${cli.npmHash.slice(0, 16)}.tar`);
  });

  it('removes layers nobody keeps once unused past the grace period, and nothing else', () => {
    const kept = layer('base-trixie-1111111111111111.tar', 30 * DAY);
    const stale = layer('base-trixie-2222222222222222.tar', LAYER_GRACE_MS + DAY, 64 * 1024);
    const staleNpm = layer('npm-3333333333333333.tar', LAYER_GRACE_MS + DAY);
    const recent = layer('npm-4444444444444444.tar', LAYER_GRACE_MS - DAY);
    const other = layer('notes.txt', 30 * DAY);
    const building = path.join(layersDir(cacheDir), '.layer-abc');
    fs.mkdirSync(building);

    const result = gcLayers({ cacheDir, keep: new Set([kept]) });

    expect(result.removed).toEqual(['layer base-trixie-2222222222222222.tar', 'layer npm-3333333333333333.tar']);
    expect(result.freedBytes).toBeGreaterThanOrEqual(64 * 1024 + 8192);
    for (const gone of [stale, staleNpm]) expect(fs.existsSync(gone)).toBe(false);
    for (const there of [kept, recent, other, building]) expect(fs.existsSync(there)).toBe(true);
  });

  it('a reused layer counts as recently used', () => {
    const file = layer('base-bookworm-5555555555555555.tar', 30 * DAY);
    markLayerUsed(file);
    expect(gcLayers({ cacheDir, keep: new Set() }).removed).toEqual([]);
    expect(fs.existsSync(file)).toBe(true);
  });

  it('has nothing to do without a layers dir', () => {
    expect(gcLayers({ cacheDir: path.join(tmp, 'none'), keep: new Set() })).toEqual({ removed: [], freedBytes: 0 });
  });

  it('image gc without a name keeps the layers the recipes build from and removes the rest; a named gc leaves layers alone', () => {
    const service = new ImageService({
      catalog: new ImageCatalog(path.join(tmp, 'state')),
      emit: () => undefined,
      recipesDir: RECIPES,
      cacheDir,
    });
    const needed = ['test', 'cli', 'browser'].flatMap((name) =>
      layersOf(cacheDir, loadRecipe(path.join(RECIPES, name))),
    );
    for (const file of needed) layer(path.basename(file), 30 * DAY);
    const old = layer('base-trixie-6666666666666666.tar', 30 * DAY);

    expect(service.gc('test', 0).removed).toEqual([]);
    expect(fs.existsSync(old)).toBe(true);

    expect(service.gc(undefined, 0).removed).toEqual(['layer base-trixie-6666666666666666.tar']);
    for (const file of needed) expect(fs.existsSync(file)).toBe(true);
    expect(fs.existsSync(old)).toBe(false);
  });
});
