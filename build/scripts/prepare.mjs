#!/usr/bin/env node
// Set-up shared by `npm start` and `npm test` on a fresh Debian or Ubuntu machine:
// checks Node, installs the Debian packages listed in system-packages.txt (as root, with apt) and the npm
// dependencies (npm ci) when they are missing or stale. Prints the one command to run when it cannot act.
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const purpose = process.argv[2] ?? 'start';

function fail(message) {
  process.stderr.write(`firedeck: ${message}\n`);
  process.exit(1);
}

const [major, minor] = process.versions.node.split('.').map(Number);
if (major < 20 || (major === 20 && minor < 19))
  fail(`Node ${process.versions.node} is too old: Firedeck needs Node 20.19 or later.`);

export function requiredPackages() {
  return fs
    .readFileSync(path.join(root, 'build/scripts/system-packages.txt'), 'utf8')
    .split('\n')
    .map((l) => l.replace(/#.*/, '').trim())
    .filter(Boolean);
}

function missingPackages(packages) {
  const res = spawnSync('dpkg-query', ['-W', '-f=${Package} ${Status}\n', ...packages], { encoding: 'utf8' });
  if (res.error) fail('dpkg-query not found: Firedeck runs on Debian or Ubuntu.');
  const installed = new Set(
    res.stdout
      .split('\n')
      .filter((l) => l.endsWith(' installed') && l.includes('install ok'))
      .map((l) => l.split(' ')[0].split(':')[0]),
  );
  return packages.filter((p) => !installed.has(p));
}

const missing = missingPackages(requiredPackages());
if (missing.length > 0) {
  const command = `apt-get install -y --no-install-recommends ${missing.join(' ')}`;
  if (process.getuid?.() !== 0) {
    fail(`system packages missing: ${missing.join(', ')}.\nRun as root: apt-get update && ${command}`);
  }
  process.stdout.write(`firedeck: installing system packages for npm ${purpose}: ${missing.join(' ')}\n`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  execFileSync('apt-get', ['update', '-q'], { stdio: 'inherit', env });
  execFileSync('apt-get', ['install', '-y', '-q', '--no-install-recommends', ...missing], { stdio: 'inherit', env });
}

// npm dependencies: install when node_modules is absent or older than the lock file.
const lock = path.join(root, 'package-lock.json');
const marker = path.join(root, 'node_modules/.package-lock.json');
const stale = !fs.existsSync(marker) || fs.statSync(marker).mtimeMs < fs.statSync(lock).mtimeMs;
if (stale) {
  process.stdout.write('firedeck: installing npm dependencies (npm ci)\n');
  // Electron's binary comes from GitHub, which some machines cannot reach; web mode needs no binary.
  execFileSync('npm', ['ci', '--no-audit', '--no-fund'], {
    cwd: root,
    stdio: 'inherit',
    env: { ...process.env, ELECTRON_SKIP_BINARY_DOWNLOAD: process.env.ELECTRON_SKIP_BINARY_DOWNLOAD ?? '1' },
  });
}
