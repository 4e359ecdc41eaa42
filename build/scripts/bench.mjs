#!/usr/bin/env node
// `npm run bench`: runs every benchmark under bench/ in one vitest run, collects the figures they record
// (bench/report.ts: each a value against a baseline measured in the same run), prints them as one table and writes
// them to bench/results/<commit>.json (`-dirty` when the tree has changes).
// Usage:
//   node build/scripts/bench.mjs [bench/x.bench.ts …]   all benches, or the ones named
//   node build/scripts/bench.mjs --compare a.json b.json  two results files' ratios side by side
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { checkResults, formatCompare, formatTable, parseRecords, RESULTS_VERSION } from './bench-report.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const args = process.argv.slice(2);

if (args[0] === '--compare') {
  if (args.length !== 3) {
    process.stderr.write('usage: node build/scripts/bench.mjs --compare a.json b.json\n');
    process.exit(2);
  }
  const [a, b] = args.slice(1).map((f) => checkResults(JSON.parse(fs.readFileSync(f, 'utf8')), f));
  process.stdout.write(`${formatCompare(a, b)}\n`);
  process.exit(0);
}

/** `git rev-parse --short HEAD`, and `-dirty` when tracked or untracked files differ from it. */
function commitName() {
  const git = (...a) => execFileSync('git', a, { cwd: root, encoding: 'utf8' }).trim();
  const head = git('rev-parse', '--short', 'HEAD');
  return git('status', '--porcelain') === '' ? head : `${head}-dirty`;
}

const work = fs.mkdtempSync(path.join(os.tmpdir(), 'firedeck-bench-'));
const recordsFile = path.join(work, 'records.jsonl');
const vitestJson = path.join(work, 'vitest.json');
fs.writeFileSync(recordsFile, '');
const commit = commitName();
const vitest = path.join(root, 'node_modules/vitest/vitest.mjs');
const res = spawnSync(
  process.execPath,
  [
    vitest,
    'run',
    '--config',
    'bench/vitest.config.ts',
    '--reporter=default',
    '--reporter=json',
    `--outputFile.json=${vitestJson}`,
    ...args,
  ],
  { cwd: root, stdio: 'inherit', env: { ...process.env, FIREDECK_BENCH_RECORDS: recordsFile } },
);

/** Bench files that failed, from vitest's JSON report (all of them when there is none). */
function failedFiles() {
  if (!fs.existsSync(vitestJson)) return ['(vitest wrote no report)'];
  const report = JSON.parse(fs.readFileSync(vitestJson, 'utf8'));
  return report.testResults.filter((t) => t.status !== 'passed').map((t) => path.relative(root, t.name));
}

const failed = failedFiles();
const records = parseRecords(fs.readFileSync(recordsFile, 'utf8'));
fs.rmSync(work, { recursive: true, force: true });
if (records.length === 0) {
  process.stderr.write('bench: no benchmark recorded a figure\n');
  process.exit(1);
}
const results = {
  version: RESULTS_VERSION,
  commit,
  at: new Date().toISOString(),
  host: { cpus: os.cpus().length, kernel: os.release(), node: process.version },
  failed,
  records,
};
const out = path.join(root, 'bench/results', `${commit}.json`);
fs.mkdirSync(path.dirname(out), { recursive: true });
fs.writeFileSync(out, `${JSON.stringify(results, null, 2)}\n`);
process.stdout.write(`\n== bench report, ${commit} (${records.length} figures)\n${formatTable(records)}\n`);
process.stdout.write(`\nwritten to ${path.relative(root, out)}\n`);
if (failed.length > 0) process.stderr.write(`bench: failed: ${failed.join(', ')}\n`);
process.exit(res.status === 0 && failed.length === 0 ? 0 : 1);
