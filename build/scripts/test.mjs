#!/usr/bin/env node
// Runs every vitest project (unit, integration, e2e). Integration suites start the daemon, sshd, QEMU guests
// and network devices, which needs root.
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
if (process.getuid?.() !== 0) {
  process.stderr.write(
    'firedeck: the test suites start firedeckd, sshd, QEMU guests and TAP devices: run npm test as root.\n',
  );
  process.exit(1);
}
const vitest = path.join(root, 'node_modules/vitest/vitest.mjs');
const res = spawnSync(process.execPath, [vitest, 'run', ...process.argv.slice(2)], { cwd: root, stdio: 'inherit' });
process.exit(res.status ?? 1);
