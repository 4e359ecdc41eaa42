import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { buildImage, type BuildProgress } from '../host-daemon/src/images/builder';
import { recipesRoot } from '../host-daemon/src/images/recipe';
import { makeTempDir } from '../test/rig/tmp';
import { record } from './report';

/**
 * Golden image builds: a full build (empty layer cache: mmdebstrap from the archive) against a rebuild after a
 * one-file change (base and npm layers reused), both without boot test. FIREDECK_BENCH_IMAGE picks the recipe
 * (default `test`; `cli` includes the npm layer).
 */
const recipe = process.env.FIREDECK_BENCH_IMAGE ?? 'test';
const cleanups: (() => void)[] = [];
afterAll(() => {
  for (const c of cleanups.reverse()) c();
});

async function timedBuild(
  recipeDir: string,
  cacheDir: string,
  outputParent: string,
): Promise<{ seconds: number; steps: Record<string, number> }> {
  const steps: Record<string, number> = {};
  let current: string | null = null;
  let since = Date.now();
  const t0 = Date.now();
  const onProgress = (p: BuildProgress): void => {
    if (p.line !== null) return;
    const now = Date.now();
    if (current !== null) steps[current] = (steps[current] ?? 0) + (now - since) / 1000;
    current = p.step;
    since = now;
  };
  await buildImage({ recipeDir, cacheDir, outputParent, onProgress });
  if (current !== null) steps[current] = (steps[current] ?? 0) + (Date.now() - since) / 1000;
  return { seconds: (Date.now() - t0) / 1000, steps };
}

describe('image builds', () => {
  it(`${recipe}: full build vs rebuild after a one-file change`, async () => {
    const dir = makeTempDir('bench-images');
    cleanups.push(() => fs.rmSync(dir, { recursive: true, force: true }));
    const cacheDir = path.join(dir, 'cache');
    const out = path.join(dir, 'out');
    const recipes = path.join(dir, 'recipes');
    fs.cpSync(recipesRoot(), recipes, { recursive: true });
    const recipeDir = path.join(recipes, recipe);

    const full = await timedBuild(recipeDir, cacheDir, out);
    const json = JSON.parse(fs.readFileSync(path.join(recipeDir, 'recipe.json'), 'utf8')) as {
      files: { src: string }[];
    };
    const first = json.files.find((f) => !f.src.startsWith('@common/')) ?? json.files[0]!;
    const changed = first.src.startsWith('@common/')
      ? path.join(recipes, 'common', 'files', first.src.slice('@common/'.length))
      : path.join(recipeDir, 'files', first.src);
    fs.appendFileSync(changed, '\n');
    const cached = await timedBuild(recipeDir, cacheDir, out);

    const fmt = (s: Record<string, number>): string =>
      Object.entries(s)
        .map(([k, v]) => `${k} ${v.toFixed(1)}s`)
        .join(', ');
    record({
      name: `image build (${recipe}): rebuild after a one-file change`,
      value: cached.seconds,
      unit: 's',
      baselineName: 'full build, no layer cache',
      baselineValue: full.seconds,
      better: 'lower',
      note: `no boot test; full: ${fmt(full.steps)}; rebuild: ${fmt(cached.steps)}`,
    });
    expect(fs.readdirSync(out).filter((n) => !n.startsWith('.'))).toHaveLength(2);
  });
});
