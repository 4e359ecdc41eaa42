import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FiredeckError } from '../../../src/shared/errors';
import { loadRecipe, type LoadedRecipe } from './recipe';
import { resolveInRoot } from './rootPath';

/** Bad-input suite (issue 17): a soak run asks for more cases with FIREDECK_FUZZ_RUNS. */
const RUNS = Number(process.env.FIREDECK_FUZZ_RUNS ?? 10_000);

const valid = {
  name: 'fuzz',
  suite: 'bookworm',
  packages: ['linux-image-amd64', 'busybox'],
  npmGlobals: ['@openai/codex@0.171.0'],
  users: [{ name: 'firedeck', uid: 1000 }],
  files: [{ src: 'hello', dest: '/etc/hello', mode: '0644' }],
  symlinks: [{ path: '/sbin/init', target: '/bin/busybox' }],
  systemdUnits: ['ssh.service'],
  prune: ['/usr/share/doc', '/usr/lib/modules/*/kernel/sound'],
  checks: [{ name: 'hello', run: 'cat /etc/hello', expect: '^hi$' }],
  readiness: ['vm'],
  rootfsSize: '1G',
};
const FIELDS = Object.keys(valid) as (keyof typeof valid)[];
const OPTIONAL = ['description', 'variant', 'components', 'initramfsModules', 'bootTest'];

/** Strings made of the pieces recipe paths and patterns are checked for: `..`, `/`, `*`, odd characters. */
const pathish = fc
  .array(fc.constantFrom('/', '..', '.', '*', 'etc', 'var/run', 'hello', '@common/', ' ', '$(', '\n', 'é', '\\', 'x'), {
    maxLength: 8,
  })
  .map((parts) => parts.join(''));
/** Values near what a field wants, or of another type altogether. */
const anyValue: fc.Arbitrary<unknown> = fc.oneof(
  pathish,
  fc.jsonValue({ maxDepth: 3 }),
  fc.array(pathish, { maxLength: 3 }),
  fc.constantFrom('[', '(?<', '*', '\\', 'a{2,1}', '(a', '0999', '1T', -1, 1e300, null, {}),
  fc.record({ src: pathish, dest: pathish, mode: fc.constantFrom('0644', '999', 644) }, { requiredKeys: [] }),
  fc.record(
    { name: fc.string({ maxLength: 90 }), run: fc.string(), expect: fc.constantFrom('[', '(a', 'a{2,1}', '^ok$') },
    { requiredKeys: [] },
  ),
);

/** The valid recipe with one or two things changed: a field replaced or dropped, an element replaced, a key added. */
const mutated: fc.Arbitrary<unknown> = fc
  .array(
    fc.oneof(
      fc.tuple(fc.constant('set'), fc.constantFrom(...FIELDS, ...OPTIONAL), anyValue),
      fc.tuple(fc.constant('drop'), fc.constantFrom(...FIELDS), fc.constant(null)),
      fc.tuple(
        fc.constant('element'),
        fc.constantFrom('files', 'symlinks', 'prune', 'checks', 'users', 'npmGlobals'),
        anyValue,
      ),
      fc.tuple(fc.constant('add'), fc.string({ maxLength: 10 }), fc.jsonValue({ maxDepth: 1 })),
    ),
    { maxLength: 2 },
  )
  .map((changes) => {
    let r: Record<string, unknown> = structuredClone(valid);
    for (const [op, key, value] of changes) {
      if (op === 'set' || op === 'add') r[key] = value;
      else if (op === 'drop') r = Object.fromEntries(Object.entries(r).filter(([k]) => k !== key));
      else if (Array.isArray(r[key])) (r[key] as unknown[])[0] = value;
    }
    return r;
  });

/** recipe.json as text: JSON of a mutated or arbitrary value, YAML-ish text, or nothing at all. */
const recipeText: fc.Arbitrary<string> = fc.oneof(
  { weight: 6, arbitrary: mutated.map((r) => JSON.stringify(r)) },
  fc.jsonValue().map((v) => JSON.stringify(v)),
  fc.constantFrom('name: fuzz\nsuite: bookworm\n', '---\n- a\n', '', '{', '\u0000', '{"name": "fuzz",}'),
  fc.string({ maxLength: 60 }),
);

let dir: string;
let root: string;
/** Each case rewrites recipe.json: in memory where the machine has it, so the suite measures parsing, not a disk. */
const scratch = fs.existsSync('/dev/shm') ? '/dev/shm' : os.tmpdir();

beforeAll(() => {
  dir = fs.mkdtempSync(path.join(scratch, 'firedeck-recipefuzz-'));
  fs.mkdirSync(path.join(dir, 'files'));
  fs.writeFileSync(path.join(dir, 'files', 'hello'), 'hi\n');
  root = fs.mkdtempSync(path.join(scratch, 'firedeck-recipefuzz-root-'));
  fs.mkdirSync(path.join(root, 'run'));
  fs.mkdirSync(path.join(root, 'var'));
  fs.symlinkSync('/run', path.join(root, 'var/run'));
});

afterAll(() => {
  fs.rmSync(dir, { recursive: true, force: true });
  fs.rmSync(root, { recursive: true, force: true });
});

describe('recipes under arbitrary recipe.json (fuzz)', () => {
  it('loads a recipe the builder can use, or refuses it with a typed invalid_params error', () => {
    const started = Date.now();
    let loaded = 0;
    let refused = 0;
    fc.assert(
      fc.property(recipeText, (text) => {
        fs.writeFileSync(path.join(dir, 'recipe.json'), text);
        let l: LoadedRecipe;
        try {
          l = loadRecipe(dir);
        } catch (err) {
          refused++;
          expect(err, String(err)).toBeInstanceOf(FiredeckError);
          expect((err as FiredeckError).kind).toBe('invalid_params');
          return;
        }
        loaded++;
        const { recipe } = l;
        expect(recipe.packages).toContain('linux-image-amd64');
        expect(l.hash).toMatch(/^[0-9a-f]{64}$/);
        // What the builder does with a loaded recipe must not throw for its shape: patterns compile, and every
        // path resolves inside the image.
        for (const check of recipe.checks) if (check.expect !== undefined) new RegExp(check.expect, 'm');
        for (const p of [...recipe.files.map((f) => f.dest), ...recipe.symlinks.map((s) => s.path), ...recipe.prune]) {
          const inImage = path.relative(root, resolveInRoot(root, p));
          expect(inImage.startsWith('..')).toBe(false);
        }
      }),
      { numRuns: RUNS },
    );
    expect(loaded).toBeGreaterThan(RUNS / 20);
    expect(refused).toBeGreaterThan(RUNS / 10);
    console.log(`recipe fuzz: ${RUNS} runs (${loaded} loaded, ${refused} refused) in ${Date.now() - started} ms`);
  }, 60_000);
});
