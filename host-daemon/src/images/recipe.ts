import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { FiredeckError } from '../../../src/shared/errors';

/**
 * Bumped whenever the builder changes what it produces from the same recipe, so cached images and layers
 * built by an older builder are not reused.
 */
export const BUILDER_VERSION = 1;

const DebianPackage = z.string().regex(/^[a-z0-9][a-z0-9+.-]+$/, 'not a Debian package name');
/**
 * Bumped whenever the npm step changes what it produces (or records) from the same npm globals: it keys the npm
 * layer and the hash of recipes that have npm globals, so recipes without any keep their cached builds.
 */
export const NPM_STEP_VERSION = 2;

/** `name@version` from the registry, or `file:<path>` of a tarball among the recipe's files. */
const NpmPackage = z
  .string()
  .regex(
    /^((@[a-z0-9][a-z0-9._-]*\/)?[a-z0-9][a-z0-9._-]*(@[A-Za-z0-9._^~<>=*+-]+)?|file:(@common\/)?[A-Za-z0-9._+-][A-Za-z0-9._+@/-]*\.tgz)$/,
    'not an npm package spec (name@version, or file:<path under files/>.tgz)',
  )
  .refine(
    (p) =>
      !p
        .replace(/^file:/, '')
        .split('/')
        .includes('..'),
    'must not contain ".."',
  );
/** An exact version: what a recipe must pin each registry package to. */
const EXACT_VERSION = /^\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?$/;
const AbsPath = z
  .string()
  .regex(/^\/[A-Za-z0-9._+@/-]*$/, 'must be an absolute path of plain characters')
  .refine((p) => !p.split('/').includes('..'), 'must not contain ".."');
const Mode = z.string().regex(/^0?[0-7]{3,4}$/, 'octal mode like "0755"');
const UnitName = z
  .string()
  .regex(/^[A-Za-z0-9@._-]+\.(service|socket|timer|target|path|mount)$/, 'not a systemd unit name');

export const RecipeFile = z
  .object({
    /** Relative to `images/<name>/files/`, or `@common/<path>` for `images/common/files/<path>`. */
    src: z
      .string()
      .regex(/^(@common\/)?[A-Za-z0-9._+-][A-Za-z0-9._+@/-]*$/, 'relative path of plain characters')
      .refine((p) => !p.split('/').includes('..'), 'must not contain ".."'),
    dest: AbsPath,
    mode: Mode.default('0644'),
  })
  .strict();

/** Whether a check's `expect` compiles as the builder compiles it (multiline), so a typo fails at load, not late. */
function compiles(pattern: string): boolean {
  try {
    new RegExp(pattern, 'm');
    return true;
  } catch {
    return false;
  }
}

export const RecipeCheck = z
  .object({
    name: z.string().min(1).max(80),
    /** Run with `/bin/sh -c` inside the image (chroot). Exit 0 passes. */
    run: z.string().min(1),
    /** When set, the check's output must also match this regular expression (checked to compile at load). */
    expect: z.string().refine(compiles, 'not a valid regular expression').optional(),
  })
  .strict();

export const ReadinessMarker = z.enum(['vm', 'sshd', 'vnc', 'agent']);
export type ReadinessMarker = z.infer<typeof ReadinessMarker>;

/** A golden image's declarative recipe, `images/<name>/recipe.json`. */
export const Recipe = z
  .object({
    name: z.string().regex(/^[a-z][a-z0-9-]{0,31}$/),
    description: z.string().max(300).default(''),
    /** Debian suite served by the machine's archive, e.g. bookworm or trixie. */
    suite: z.string().regex(/^[a-z]+$/),
    variant: z.enum(['minbase', 'essential', 'apt', 'required', 'important']).default('minbase'),
    components: z
      .array(z.string().regex(/^[a-z-]+$/))
      .min(1)
      .default(['main']),
    /** Installed into the base layer (cached by suite + this list). Must include `linux-image-amd64`. */
    packages: z.array(DebianPackage).min(1),
    /** Modules put into the initrd (MODULES=list keeps it small, so it unpacks fast under TCG). */
    initramfsModules: z.array(z.string().regex(/^[a-z0-9_-]+$/)).default([]),
    /**
     * Installed with `npm install -g` from the machine's configured npm registry, each pinned to an exact version
     * (`@openai/codex@0.171.0`); or `file:<path>` of a package tarball among the recipe's files.
     */
    npmGlobals: z.array(NpmPackage).default([]),
    users: z
      .array(
        z
          .object({
            name: z.string().regex(/^[a-z_][a-z0-9_-]{0,31}$/),
            uid: z.number().int().min(1000).max(60000),
            shell: AbsPath.default('/bin/sh'),
            groups: z.array(z.string().regex(/^[a-z_][a-z0-9_-]{0,31}$/)).default([]),
          })
          .strict(),
      )
      .default([]),
    files: z.array(RecipeFile).default([]),
    symlinks: z.array(z.object({ path: AbsPath, target: z.string().min(1) }).strict()).default([]),
    /** Enabled with `systemctl --root` (no systemd runs during the build). */
    systemdUnits: z.array(UnitName).default([]),
    /** Paths deleted from the image to keep it small (docs, man pages, apt lists). */
    prune: z
      .array(
        z
          .string()
          .regex(/^\/[A-Za-z0-9._+@/*-]*$/, 'absolute path; "*" matches within one segment')
          .refine((p) => !p.split('/').includes('..') && p !== '/', 'must not be / or contain ".."'),
      )
      .default([]),
    checks: z.array(RecipeCheck).default([]),
    /** Markers (`FIREDECK-READY <marker>`) the boot test waits for, in any order. */
    readiness: z.array(ReadinessMarker).min(1),
    rootfsSize: z.string().regex(/^[0-9]+[MG]$/, 'size like 1G or 800M'),
    bootTest: z
      .object({
        memoryMiB: z.number().int().min(128).max(16384).default(512),
        cpus: z.number().int().min(1).max(8).default(1),
        timeoutSeconds: z.number().int().min(10).max(3600).default(180),
        kind: z.enum(['cli', 'browser']).default('cli'),
      })
      .strict()
      .default({ memoryMiB: 512, cpus: 1, timeoutSeconds: 180, kind: 'cli' }),
  })
  .strict();
export type Recipe = z.infer<typeof Recipe>;

/** A recipe with where it came from and the hash that names its build. */
export interface LoadedRecipe {
  recipe: Recipe;
  dir: string;
  /** sha256 over the builder version, the recipe and every file it references (content and mode). */
  hash: string;
  /** sha256 of what goes into the base layer only (suite, variant, components, packages, initrd modules). */
  baseHash: string;
  /** sha256 of the base plus the npm globals (and the content of local npm tarballs). */
  npmHash: string;
}

/** The npm globals of a recipe as the npm step installs them: from the registry, or a tarball of the recipe. */
export type NpmGlobalSource = { spec: string; registry: true } | { spec: string; registry: false; file: string };

/** Where recipes live: `images/` at the repository root (or FIREDECK_IMAGES_DIR for an installed daemon). */
export function recipesRoot(): string {
  if (process.env.FIREDECK_IMAGES_DIR) return process.env.FIREDECK_IMAGES_DIR;
  // The daemon ships as one bundled file (no import.meta there): look up from the script and the cwd.
  const starts = [process.argv[1] ? path.dirname(fs.realpathSync(process.argv[1])) : null, process.cwd()];
  for (const start of starts) {
    if (start === null) continue;
    for (let dir = start; dir !== path.dirname(dir); dir = path.dirname(dir)) {
      const candidate = path.join(dir, 'images');
      if (fs.existsSync(path.join(candidate, 'test', 'recipe.json'))) return candidate;
    }
  }
  throw new FiredeckError('not_found', 'cannot find the images/ directory with the recipes', {
    hint: 'set FIREDECK_IMAGES_DIR to the directory holding <name>/recipe.json',
  });
}

/** Reads and validates `<dir>/recipe.json`, checks every referenced file exists, and computes the hashes. */
export function loadRecipe(dir: string): LoadedRecipe {
  const file = path.join(dir, 'recipe.json');
  let raw: unknown;
  try {
    raw = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (err) {
    throw new FiredeckError('invalid_params', `recipe ${file}: ${err instanceof Error ? err.message : String(err)}`, {
      hint: 'a recipe is a JSON file images/<name>/recipe.json',
    });
  }
  const parsed = Recipe.safeParse(raw);
  if (!parsed.success) {
    const issues = parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`);
    throw new FiredeckError('invalid_params', `recipe ${file} is invalid: ${issues.join('; ')}`, {
      details: { issues },
    });
  }
  const recipe = parsed.data;
  if (!recipe.packages.includes('linux-image-amd64')) {
    throw new FiredeckError('invalid_params', `recipe ${file}: packages must include linux-image-amd64`, {
      hint: 'images boot with their own kernel and initrd',
    });
  }

  const localNpm: string[] = [];
  for (const source of npmGlobalSources(recipe, dir)) {
    if (source.registry) {
      requirePinned(file, source.spec);
      continue;
    }
    try {
      localNpm.push(`${source.spec}\0${sha256(fs.readFileSync(source.file))}`);
    } catch {
      throw new FiredeckError('invalid_params', `recipe ${recipe.name}: npm tarball ${source.spec} is missing`, {
        hint: `create ${source.file} (npm pack) or remove it from "npmGlobals"`,
        details: { src: source.file },
      });
    }
  }

  const hash = crypto.createHash('sha256');
  hash.update(`firedeck-builder ${BUILDER_VERSION}\n`);
  if (recipe.npmGlobals.length > 0) hash.update(`firedeck-npm-step ${NPM_STEP_VERSION}\n${localNpm.join('\n')}\n`);
  hash.update(JSON.stringify(recipe));
  for (const f of recipe.files) {
    const src = recipeFilePath(dir, f.src);
    let content: Buffer;
    try {
      content = fs.readFileSync(src);
    } catch {
      throw new FiredeckError('invalid_params', `recipe ${recipe.name}: file ${f.src} (for ${f.dest}) is missing`, {
        hint: `create ${src} or remove it from "files"`,
        details: { src },
      });
    }
    hash.update(`\0${f.src}\0${f.dest}\0${f.mode}\0${content.length}\0`);
    hash.update(content);
  }
  return {
    recipe,
    dir,
    hash: hash.digest('hex'),
    baseHash: baseLayerHash(recipe),
    npmHash: npmLayerHash(recipe, localNpm),
  };
}

/** Where each npm global comes from; a `file:` spec names a tarball as `files[].src` does. */
export function npmGlobalSources(recipe: Recipe, recipeDir: string): NpmGlobalSource[] {
  return recipe.npmGlobals.map((spec) =>
    spec.startsWith('file:')
      ? { spec, registry: false, file: recipeFilePath(recipeDir, spec.slice('file:'.length)) }
      : { spec, registry: true },
  );
}

/** A registry package must name its exact version: a range or a tag installs whatever is newest that day. */
function requirePinned(recipeFile: string, spec: string): void {
  const at = spec.lastIndexOf('@');
  const name = at > 0 ? spec.slice(0, at) : spec;
  const version = at > 0 ? spec.slice(at + 1) : '';
  if (EXACT_VERSION.test(version)) return;
  throw new FiredeckError(
    'invalid_params',
    `recipe ${recipeFile}: npm global ${name} is not pinned to an exact version (${JSON.stringify(spec)})`,
    {
      hint: `write it as ${name}@<version>, e.g. the version \`npm view ${name} version\` prints`,
      details: { npmGlobal: spec },
    },
  );
}

/** Where a recipe's `files[].src` lives on disk. */
export function recipeFilePath(recipeDir: string, src: string): string {
  const common = '@common/';
  if (src.startsWith(common)) return path.join(recipeDir, '..', 'common', 'files', src.slice(common.length));
  return path.join(recipeDir, 'files', src);
}

export function baseLayerHash(recipe: Recipe): string {
  return sha256(
    JSON.stringify({
      builder: BUILDER_VERSION,
      suite: recipe.suite,
      variant: recipe.variant,
      components: recipe.components,
      packages: [...recipe.packages].sort(),
      initramfsModules: recipe.initramfsModules,
    }),
  );
}

/** `localTarballs`: `<spec>\0<sha256 of its content>` of each `file:` global. */
export function npmLayerHash(recipe: Recipe, localTarballs: readonly string[] = []): string {
  return sha256(
    JSON.stringify({
      base: baseLayerHash(recipe),
      step: NPM_STEP_VERSION,
      npm: [...recipe.npmGlobals].sort(),
      local: [...localTarballs].sort(),
    }),
  );
}

function sha256(text: string | Buffer): string {
  return crypto.createHash('sha256').update(text).digest('hex');
}

/** Finds `images/<name>` for a recipe name, or accepts a path to a recipe directory. */
export function resolveRecipeDir(nameOrDir: string, root: string = recipesRoot()): string {
  if (nameOrDir.includes('/')) return path.resolve(nameOrDir);
  if (!/^[a-z][a-z0-9-]{0,31}$/.test(nameOrDir)) {
    throw new FiredeckError('invalid_params', `not a recipe name: ${JSON.stringify(nameOrDir)}`);
  }
  const dir = path.join(root, nameOrDir);
  if (!fs.existsSync(path.join(dir, 'recipe.json'))) {
    throw new FiredeckError('not_found', `no recipe named ${nameOrDir} (looked for ${dir}/recipe.json)`);
  }
  return dir;
}
