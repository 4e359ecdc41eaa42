#!/usr/bin/env node
// `npm run package [-- electron-builder options]`: the installers (build/electron-builder.config.cjs).
// Before anything slow it checks what electron-builder will need to download, and fails in one line where that
// cannot work (no internet, as on the development machines of this project) instead of after its retries;
// it also clears npm's `nodedir`, which would make the native modules compile against Node instead of Electron.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import https from 'node:https';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const require = createRequire(import.meta.url);
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const args = process.argv.slice(2);
const electronVersion = require('electron/package.json').version;

function fail(message) {
  process.stderr.write(`npm run package: ${message}\n`);
  process.exit(1);
}

/** The platforms and archs the command line asks for (electron-builder's flags), else this machine's. */
function wanted() {
  const platforms = [];
  if (args.some((a) => a === '--mac' || a === '-m' || a === '--macos')) platforms.push('darwin');
  if (args.some((a) => a === '--linux' || a === '-l')) platforms.push('linux');
  if (platforms.length === 0) platforms.push(process.platform);
  const archs = ['x64', 'arm64'].filter((a) => args.includes(`--${a}`));
  return { platforms, archs: archs.length > 0 ? archs : ['x64', 'arm64'] };
}

/** Electron zips already on this machine, in @electron/get's or electron-builder's cache. */
function cachedZip(name) {
  const home = os.homedir();
  const caches = [
    process.env.ELECTRON_CACHE,
    process.env.ELECTRON_BUILDER_CACHE,
    process.platform === 'darwin' ? path.join(home, 'Library/Caches/electron') : path.join(home, '.cache/electron'),
    process.platform === 'darwin'
      ? path.join(home, 'Library/Caches/electron-builder')
      : path.join(home, '.cache/electron-builder'),
  ].filter(Boolean);
  const walk = (dir, depth) => {
    let entries = [];
    try {
      entries = fs.readdirSync(dir, { withFileTypes: true });
    } catch {
      return false;
    }
    return entries.some((e) =>
      e.isFile() ? e.name === name : e.isDirectory() && depth > 0 && walk(path.join(dir, e.name), depth - 1),
    );
  };
  return caches.some((dir) => walk(dir, 3));
}

/** Resolves with null when the URL answers at all, else with why it does not (within 5 s). */
function reachable(url) {
  return new Promise((resolve) => {
    const req = https.request(url, { method: 'HEAD', timeout: 5000 }, (res) => {
      res.resume();
      resolve(res.statusCode !== undefined && res.statusCode < 400 ? null : `HTTP ${res.statusCode}`);
    });
    req.once('timeout', () => req.destroy(new Error('no answer within 5 s')));
    req.once('error', (err) => resolve(err.code ?? err.message));
    req.end();
  });
}

const customDist = args.some((a) => /^(-c|--config)\.electronDist=/.test(a));
if (!customDist) {
  const { platforms, archs } = wanted();
  const missing = platforms
    .flatMap((p) => archs.map((a) => `electron-v${electronVersion}-${p}-${a}.zip`))
    .filter((z) => !cachedZip(z));
  if (missing.length > 0) {
    // @electron/get's defaults, overridable the same way.
    const mirror = process.env.ELECTRON_MIRROR ?? 'https://github.com/electron/electron/releases/download/';
    const dir = process.env.ELECTRON_CUSTOM_DIR ?? `v${electronVersion}`;
    const url = `${mirror.replace(/\/?$/, '/')}${dir.replace('{{ version }}', electronVersion)}/${missing[0]}`;
    const why = await reachable(url);
    if (why !== null) {
      fail(
        `electron-builder needs ${missing[0]}, which cannot be downloaded from ${new URL(url).host} here (${why}); ` +
          'build the installers on a machine with internet access (README, "Installers"), or put the zip in ~/.cache/electron.',
      );
    }
  }
}

if (process.env.FIREDECK_REQUIRE_SIGNING === '1' && wanted().platforms.includes('darwin')) {
  const e = process.env;
  const notarize =
    (e.APPLE_API_KEY && e.APPLE_API_KEY_ID && e.APPLE_API_ISSUER) ||
    (e.APPLE_ID && e.APPLE_APP_SPECIFIC_PASSWORD && e.APPLE_TEAM_ID);
  if (!e.CSC_LINK || !notarize) {
    fail(
      'FIREDECK_REQUIRE_SIGNING=1 but the signing identity (CSC_LINK, CSC_KEY_PASSWORD) or the notarization credentials (APPLE_API_KEY, APPLE_API_KEY_ID, APPLE_API_ISSUER) are not set',
    );
  }
}

// npm exports its config to scripts; a nodedir there makes node-gyp use Node's headers for the Electron rebuild.
const env = Object.fromEntries(
  Object.entries(process.env).filter(([key]) => key.toLowerCase() !== 'npm_config_nodedir'),
);

const npm = spawnSync('npm', ['run', 'build'], { cwd: root, stdio: 'inherit', env });
if (npm.status !== 0) process.exit(npm.status ?? 1);
const builder = spawnSync(
  process.execPath,
  [require.resolve('electron-builder/cli.js'), '--config', 'build/electron-builder.config.cjs', ...args],
  { cwd: root, stdio: 'inherit', env },
);
process.exit(builder.status ?? 1);
