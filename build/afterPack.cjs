// electron-builder afterPack hook: the packaged native modules (better-sqlite3, ssh2's optional sshcrypto and
// cpu-features) must be built for Electron's module ABI and the target CPU. @electron/rebuild reports success while
// compiling against Node's headers when npm's `nodedir` points at them (this machine's ~/.npmrc does): such a
// module loads in Node and fails in the app. So the package is checked, and the build fails naming each file.
'use strict';
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');
const { findNativeModules, nativeModuleProblems } = require('./nativeModules.cjs');

const ARCHS = { 0: 'ia32', 1: 'x64', 2: 'armv7l', 3: 'arm64', 4: 'universal' };

/** Electron's module ABI, as its npm package records it (abi_version), else from node-abi's table. */
function electronAbi(version) {
  const recorded = path.join(path.dirname(require.resolve('electron/package.json')), 'abi_version');
  const installed = require('electron/package.json').version;
  if (installed === version && fs.existsSync(recorded)) return Number(fs.readFileSync(recorded, 'utf8').trim());
  return Number(require('node-abi').getAbi(version, 'electron'));
}

/** Where a packed app keeps its resources (app.asar, app.asar.unpacked). */
function resourcesDir(appOutDir, platform, productFilename) {
  return platform === 'darwin' || platform === 'mas'
    ? path.join(appOutDir, `${productFilename}.app`, 'Contents', 'Resources')
    : path.join(appOutDir, 'resources');
}

/** @param {import('app-builder-lib').AfterPackContext} context */
async function afterPack(context) {
  const arch = ARCHS[context.arch] ?? String(context.arch);
  const version = context.packager.config.electronVersion;
  const abi = electronAbi(version);
  const unpacked = path.join(
    resourcesDir(context.appOutDir, context.electronPlatformName, context.packager.appInfo.productFilename),
    'app.asar.unpacked',
  );
  const archs = arch === 'universal' ? ['x64', 'arm64'] : [arch];
  const problems = archs.flatMap((a) =>
    nativeModuleProblems(unpacked, { abi, arch: a, runtime: `Electron ${version}` }),
  );
  // Fuses are flipped after this hook, so the packaged binary still runs as Node: load every module in it where
  // this machine can run the target. That also covers modules whose ABI the file does not name.
  if (problems.length === 0 && context.electronPlatformName === process.platform && arch === process.arch) {
    problems.push(...loadProblems(packagedBinary(context), findNativeModules(unpacked)));
  }
  if (problems.length > 0) {
    throw new Error(
      `native modules in ${unpacked} are not built for Electron ${version} (ABI ${abi}) on ${arch}:\n  ${problems.join('\n  ')}\n` +
        'They were compiled against Node: unset npm\'s nodedir (npm config delete nodedir, or run "npm run package", ' +
        "which clears it) so that @electron/rebuild uses Electron's headers.",
    );
  }
}

function packagedBinary(context) {
  const { appOutDir, electronPlatformName, packager } = context;
  const name = packager.appInfo.productFilename;
  if (electronPlatformName === 'darwin' || electronPlatformName === 'mas') {
    return path.join(appOutDir, `${name}.app`, 'Contents', 'MacOS', name);
  }
  return path.join(appOutDir, packager.executableName ?? name);
}

/** dlopen()s each module in the packaged Electron (as Node); its refusal names the ABI it wanted. */
function loadProblems(binary, modules) {
  const script = `for (const f of JSON.parse(process.argv[1])) process.dlopen({ exports: {} }, f); process.stdout.write('loaded ' + JSON.parse(process.argv[1]).length)`;
  const res = spawnSync(binary, ['-e', script, JSON.stringify(modules)], {
    env: { ...process.env, ELECTRON_RUN_AS_NODE: '1' },
    encoding: 'utf8',
    timeout: 60_000,
  });
  if (res.stdout === `loaded ${modules.length}`) return [];
  const why = (res.stderr || res.error?.message || `exit ${res.status}`).trim().split('\n').slice(0, 4).join(' / ');
  return [`loading them in ${binary} failed: ${why}`];
}

module.exports = afterPack;
module.exports.default = afterPack;
module.exports.electronAbi = electronAbi;
module.exports.resourcesDir = resourcesDir;
