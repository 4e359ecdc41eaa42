import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { isFiredeckError } from '../../../src/shared/errors';
import { loadRecipe, recipesRoot, resolveRecipeDir } from './recipe';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

function recipeDir(recipe: Record<string, unknown>, files: Record<string, string> = {}): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'firedeck-recipe-'));
  dirs.push(dir);
  fs.writeFileSync(path.join(dir, 'recipe.json'), JSON.stringify(recipe));
  for (const [name, content] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(dir, 'files', name)), { recursive: true });
    fs.writeFileSync(path.join(dir, 'files', name), content);
  }
  return dir;
}

const minimal = {
  name: 'sample',
  suite: 'bookworm',
  packages: ['linux-image-amd64', 'busybox'],
  files: [{ src: 'hello', dest: '/etc/hello', mode: '0644' }],
  readiness: ['vm'],
  rootfsSize: '1G',
};

describe('recipes', () => {
  it('loads every recipe shipped in images/', () => {
    const root = recipesRoot();
    const names = fs.readdirSync(root).filter((n) => fs.existsSync(path.join(root, n, 'recipe.json')));
    expect(names).toContain('test');
    for (const name of names) {
      const loaded = loadRecipe(resolveRecipeDir(name, root));
      expect(loaded.recipe.name).toBe(name);
      expect(loaded.hash).toMatch(/^[0-9a-f]{64}$/);
    }
  });

  it('applies defaults and computes stable hashes', () => {
    const dir = recipeDir(minimal, { hello: 'hi\n' });
    const a = loadRecipe(dir);
    expect(a.recipe.variant).toBe('minbase');
    expect(a.recipe.npmGlobals).toEqual([]);
    expect(loadRecipe(dir).hash).toBe(a.hash);
  });

  it('changes the recipe hash, not the base layer hash, when a referenced file changes', () => {
    const a = loadRecipe(recipeDir(minimal, { hello: 'hi\n' }));
    const b = loadRecipe(recipeDir(minimal, { hello: 'hello\n' }));
    expect(b.hash).not.toBe(a.hash);
    expect(b.baseHash).toBe(a.baseHash);
    expect(b.npmHash).toBe(a.npmHash);
  });

  it('changes the base layer hash when the package list changes, but not with its order', () => {
    const a = loadRecipe(recipeDir(minimal, { hello: 'hi\n' }));
    const reordered = loadRecipe(
      recipeDir({ ...minimal, packages: ['busybox', 'linux-image-amd64'] }, { hello: 'hi\n' }),
    );
    const more = loadRecipe(recipeDir({ ...minimal, packages: [...minimal.packages, 'jq'] }, { hello: 'hi\n' }));
    expect(reordered.baseHash).toBe(a.baseHash);
    expect(more.baseHash).not.toBe(a.baseHash);
  });

  it('names a missing file', () => {
    const dir = recipeDir(minimal, {});
    expect(() => loadRecipe(dir)).toThrow(/file hello \(for \/etc\/hello\) is missing/);
  });

  it('rejects unknown fields, path escapes and bad package names with the field named', () => {
    const cases: [Record<string, unknown>, RegExp][] = [
      [{ ...minimal, extra: 1 }, /Unrecognized key|unrecognized/i],
      [{ ...minimal, files: [{ src: '../x', dest: '/etc/x' }] }, /files\.0\.src/],
      [{ ...minimal, files: [{ src: 'hello', dest: '/etc/../x' }] }, /files\.0\.dest/],
      [{ ...minimal, packages: ['linux-image-amd64', 'Bad Name'] }, /packages\.1/],
      [{ ...minimal, readiness: ['sometime'] }, /readiness\.0/],
      [{ ...minimal, packages: ['busybox'] }, /must include linux-image-amd64/],
      [{ ...minimal, prune: ['/'] }, /prune\.0/],
      // Found by recipe.fuzz.test.ts: this loaded, and the build threw a SyntaxError at its checks step.
      [{ ...minimal, checks: [{ name: 'x', run: 'true', expect: '[' }] }, /checks\.0\.expect: not a valid regular/],
    ];
    for (const [recipe, message] of cases) {
      let error: unknown;
      try {
        loadRecipe(recipeDir(recipe, { hello: 'hi' }));
      } catch (err) {
        error = err;
      }
      expect(isFiredeckError(error, 'invalid_params'), String(error)).toBe(true);
      expect((error as Error).message).toMatch(message);
    }
  });

  it('refuses an npm global not pinned to an exact version, naming it', () => {
    for (const spec of ['@openai/codex', '@openai/codex@latest', '@openai/codex@^0.171.0', 'left-pad@1.x']) {
      let error: unknown;
      try {
        loadRecipe(recipeDir({ ...minimal, npmGlobals: ['left-pad@1.3.0', spec] }, { hello: 'hi' }));
      } catch (err) {
        error = err;
      }
      expect(isFiredeckError(error, 'invalid_params'), String(error)).toBe(true);
      const name = spec.slice(0, spec.lastIndexOf('@') > 0 ? spec.lastIndexOf('@') : undefined);
      expect((error as Error).message).toContain(`npm global ${name} is not pinned to an exact version`);
      expect((error as { details?: unknown }).details).toEqual({ npmGlobal: spec });
    }
    const pinned = loadRecipe(
      recipeDir({ ...minimal, npmGlobals: ['@openai/codex@0.171.0', 'x@1.0.0-beta.2'] }, { hello: 'hi' }),
    );
    expect(pinned.recipe.npmGlobals).toEqual(['@openai/codex@0.171.0', 'x@1.0.0-beta.2']);
  });

  it('takes a local npm tarball among the files, keyed by its content', () => {
    const withTarball = (content: string): ReturnType<typeof loadRecipe> =>
      loadRecipe(recipeDir({ ...minimal, npmGlobals: ['file:pkg.tgz'] }, { hello: 'hi', 'pkg.tgz': content }));
    const a = withTarball('one');
    const b = withTarball('two');
    expect(b.npmHash).not.toBe(a.npmHash);
    expect(b.hash).not.toBe(a.hash);
    expect(b.baseHash).toBe(a.baseHash);
    expect(() => loadRecipe(recipeDir({ ...minimal, npmGlobals: ['file:gone.tgz'] }, { hello: 'hi' }))).toThrow(
      /npm tarball file:gone.tgz is missing/,
    );
    expect(() => loadRecipe(recipeDir({ ...minimal, npmGlobals: ['file:../x.tgz'] }, { hello: 'hi' }))).toThrow(
      /npmGlobals\.0/,
    );
  });

  it('rejects a recipe that is not JSON', () => {
    const dir = recipeDir(minimal, { hello: 'hi' });
    fs.writeFileSync(path.join(dir, 'recipe.json'), '{ nope');
    expect(() => loadRecipe(dir)).toThrow(/recipe .*recipe\.json/);
  });
});
