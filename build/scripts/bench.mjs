#!/usr/bin/env node
// `npm run bench`: runs every benchmark under bench/ (each reports ratios against a baseline measured in the
// same run) and prints their reports.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const benches = fs
  .readdirSync(path.join(root, 'bench'))
  .filter((f) => f.endsWith('.bench.ts'))
  .sort();
const vitest = path.join(root, 'node_modules/vitest/vitest.mjs');
let failed = 0;
for (const b of benches) {
  process.stdout.write(`\n== bench/${b}\n`);
  const res = spawnSync(process.execPath, [vitest, 'run', '--config', 'bench/vitest.config.ts', `bench/${b}`], {
    cwd: root,
    stdio: 'inherit',
  });
  if (res.status !== 0) failed++;
}
process.exit(failed === 0 ? 0 : 1);
