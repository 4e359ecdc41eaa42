/** Types of build/scripts/bench-report.mjs for bench/report.ts and its unit test. */

/** One figure of a benchmark, against a baseline measured in the same run (or the old system's fixed wait). */
export interface BenchRecord {
  /** The row's name, unique in a run, e.g. 'rootfs clone (cp --reflink=auto --sparse=always)'. */
  name: string;
  value: number;
  /** The unit of value and baselineValue, e.g. 'ms', 'MB/s', 'MiB'. */
  unit: string;
  /** What the baseline is, e.g. 'dd bs=4M'. */
  baselineName: string;
  baselineValue: number;
  /** value / baselineValue. */
  ratio: number;
  /** Which way value (and so the ratio) is better. */
  better: 'lower' | 'higher';
  /** A goal from the issues: on the value (in its unit) or on the ratio. */
  target?: { on: 'value' | 'ratio'; op: '<=' | '>='; limit: number };
  /** How it was measured, in a few words (sample counts, sizes). */
  note?: string;
}

/** A figure as a bench hands it in: the ratio is computed. */
export type BenchRecordInput = Omit<BenchRecord, 'ratio'>;

/** bench/results/<commit>.json */
export interface BenchResults {
  version: 1;
  /** `git rev-parse --short HEAD`, with `-dirty` when the tree had changes. */
  commit: string;
  /** ISO time the run ended. */
  at: string;
  host: { cpus: number; kernel: string; node: string };
  /** Bench files that failed (their figures may be missing). */
  failed: string[];
  records: BenchRecord[];
}

export const RESULTS_VERSION: 1;
export function checkRecord(input: unknown): BenchRecord;
export function targetMet(r: BenchRecord): boolean | null;
export function parseRecords(text: string): BenchRecord[];
export function formatTable(records: readonly BenchRecord[]): string;
export function checkResults(input: unknown, file: string): BenchResults;
export function formatCompare(a: BenchResults, b: BenchResults): string;
