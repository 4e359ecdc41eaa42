#!/usr/bin/env node
// Checks a packed app (electron-builder's linux-unpacked dir or a macOS .app) against what the product promises:
//   - the Electron fuses in its binary are the profile's (build/electronFuses.cjs);
//   - app.asar holds out/ and package.json, and of node_modules only production dependencies (by name and version
//     in package-lock.json), with no source maps, tests, C sources or build intermediates, and nothing of the daemon;
//   - every package the main bundle imports is inside;
//   - the unpacked native modules are built for Electron's ABI and the target CPU.
// Usage: node build/scripts/verify-package.mjs --app DIR|APP.app [--fuses release|test] [--arch x64|arm64]
// Prints each problem and exits 1, or prints a summary and exits 0. Run by the release workflow after packaging.
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const require = createRequire(import.meta.url);
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const asar = require('@electron/asar');
const { getCurrentFuseWire, FuseV1Options } = require('@electron/fuses');
const { PROFILES } = require('../electronFuses.cjs');
const { nativeModuleProblems } = require('../nativeModules.cjs');
const { electronAbi } = require('../afterPack.cjs');
const config = require('../electron-builder.config.cjs');

const { values } = parseArgs({
  options: { app: { type: 'string' }, fuses: { type: 'string', default: 'release' }, arch: { type: 'string' } },
});
if (!values.app) {
  process.stderr.write('usage: verify-package.mjs --app DIR|APP.app [--fuses release|test] [--arch x64|arm64]\n');
  process.exit(2);
}
const app = path.resolve(values.app);
const mac = app.endsWith('.app');
const arch = values.arch ?? process.arch;
const profile = PROFILES[values.fuses];
if (!profile) throw new Error(`unknown fuse profile ${values.fuses}`);

const problems = [];
const resources = mac ? path.join(app, 'Contents/Resources') : path.join(app, 'resources');
const archive = path.join(resources, 'app.asar');

// 1. Fuses.
const FUSE_KEYS = {
  runAsNode: FuseV1Options.RunAsNode,
  enableCookieEncryption: FuseV1Options.EnableCookieEncryption,
  enableNodeOptionsEnvironmentVariable: FuseV1Options.EnableNodeOptionsEnvironmentVariable,
  enableNodeCliInspectArguments: FuseV1Options.EnableNodeCliInspectArguments,
  enableEmbeddedAsarIntegrityValidation: FuseV1Options.EnableEmbeddedAsarIntegrityValidation,
  onlyLoadAppFromAsar: FuseV1Options.OnlyLoadAppFromAsar,
};
const wire = await getCurrentFuseWire(mac ? app : path.join(app, config.linux.executableName));
for (const [key, index] of Object.entries(FUSE_KEYS)) {
  const actual = String.fromCharCode(wire[index]) === '1';
  if (actual !== profile[key])
    problems.push(
      `fuse ${key} is ${actual ? 'on' : 'off'}, the ${values.fuses} profile wants ${profile[key] ? 'on' : 'off'}`,
    );
}

// 2. What is inside app.asar.
const files = asar.listPackage(archive, { isPack: false }).map((p) => p.replace(/\\/g, '/'));
for (const needed of ['/package.json', '/out/main/index.js', '/out/preload/index.cjs', '/out/renderer/index.html']) {
  if (!files.includes(needed)) problems.push(`app.asar lacks ${needed}`);
}
const tops = new Set(files.map((f) => f.split('/')[1]));
for (const top of tops)
  if (!['out', 'node_modules', 'package.json'].includes(top)) problems.push(`app.asar holds /${top}`);
const forbidden = [
  [/\.map$/, 'a source map'],
  [/\/(test|tests|__tests__)\/|\.(test|spec)\.[cm]?js$/, 'a test file'],
  [/\.(c|cc|cpp|h|hpp|gyp|gypi|ts|mts|cts)$/, 'a source file'],
  [/\/obj\.target\/|\/\.deps\/|test_extension\.node$/, 'a build intermediate'],
  [/^\/node_modules\/@firedeck\//, 'the daemon'],
];
for (const [re, what] of forbidden) {
  const hits = files.filter((f) => re.test(f));
  if (hits.length > 0)
    problems.push(
      `app.asar holds ${what}: ${hits.slice(0, 5).join(', ')}${hits.length > 5 ? ` and ${hits.length - 5} more` : ''}`,
    );
}

// Each packaged package must be a production dependency, at the version the lock file resolved.
const lock = JSON.parse(fs.readFileSync(path.join(root, 'package-lock.json'), 'utf8')).packages;
const production = new Set(
  Object.entries(lock)
    .filter(([k, v]) => k.startsWith('node_modules/') && !v.dev && !v.link)
    .map(([k, v]) => `${k.slice(k.lastIndexOf('node_modules/') + 'node_modules/'.length)}@${v.version}`),
);
const readPackaged = (file) => {
  const unpacked = path.join(`${archive}.unpacked`, file);
  return fs.existsSync(unpacked)
    ? fs.readFileSync(unpacked, 'utf8')
    : asar.extractFile(archive, file.slice(1)).toString('utf8');
};
// The package.json at the root of each packaged package, hoisted or nested.
const packages = files.filter((f) => /^(?:\/.*)?\/node_modules\/(?:@[^/]+\/)?[^/@]+\/package\.json$/.test(f));
const shipped = packages.map((f) => {
  const pkg = JSON.parse(readPackaged(f));
  return `${pkg.name}@${pkg.version}`;
});
for (const p of shipped)
  if (!production.has(p)) problems.push(`app.asar holds ${p}, which is not a production dependency`);

// 3. Every bare import of the main process bundle is packaged.
const builtins = new Set(require('node:module').builtinModules);
for (const f of files.filter((x) => /^\/out\/main\/.*\.js$/.test(x))) {
  for (const m of readPackaged(f).matchAll(/(?:from|import\(|require\()\s*["']([^"'./][^"']*)["']/g)) {
    const spec = m[1];
    if (spec.startsWith('node:') || builtins.has(spec) || spec === 'electron') continue;
    const name = spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0];
    if (!files.includes(`/node_modules/${name}/package.json`))
      problems.push(`${f} imports ${name}, which is not packaged`);
  }
}

// 4. Native modules: Electron's ABI, the target CPU.
const abi = electronAbi(config.electronVersion);
problems.push(
  ...nativeModuleProblems(`${archive}.unpacked`, { abi, arch, runtime: `Electron ${config.electronVersion}` }).map(
    (p) => `app.asar.unpacked/${p}`,
  ),
);

if (problems.length > 0) {
  process.stderr.write(`verify-package: ${app}\n  ${problems.join('\n  ')}\n`);
  process.exit(1);
}
process.stdout.write(
  `verify-package: ${app}: ${values.fuses} fuses, ${files.length} files, ${shipped.length} production packages, native modules for Electron ABI ${abi} on ${arch}\n`,
);
