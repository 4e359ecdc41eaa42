import fs from 'node:fs';
import { checkRecord, formatTable, type BenchRecord, type BenchRecordInput } from '../build/scripts/bench-report.mjs';

export type { BenchRecord, BenchRecordInput };

/**
 * Where `npm run bench` (build/scripts/bench.mjs) collects the figures of one run, one JSON line each; it merges
 * them into one table and bench/results/<commit>.json. Without it (a bench run on its own with vitest) each
 * figure is printed as a one-row table.
 */
export const RECORDS_ENV = 'FIREDECK_BENCH_RECORDS';

/**
 * Records one figure of a benchmark. Throws when it is not a measurement (no sample, zero, NaN): a bench that
 * cannot measure fails instead of reporting nothing.
 */
export function record(input: BenchRecordInput): BenchRecord {
  const checked = checkRecord(input);
  const file = process.env[RECORDS_ENV];
  if (file) fs.appendFileSync(file, `${JSON.stringify(checked)}\n`);
  else console.log(formatTable([checked]));
  return checked;
}

/** The p-th percentile (nearest rank) of samples; throws on none, so that an empty run is not a zero. */
export function percentile(samples: readonly number[], p: number): number {
  if (samples.length === 0) throw new Error(`no samples for the p${p}`);
  const sorted = [...samples].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

/** Milliseconds since `t0` (process.hrtime.bigint()). */
export function msSince(t0: bigint): number {
  return Number(process.hrtime.bigint() - t0) / 1e6;
}
