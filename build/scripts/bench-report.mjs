// The bench report: what every benchmark records (bench/report.ts writes it, one JSON line per figure), the one
// table `npm run bench` prints, the results file it writes (bench/results/<commit>.json) and the comparison of two
// such files (`node build/scripts/bench.mjs --compare a.json b.json`). Plain JavaScript so that the runner reads
// it without a build; its types are in bench-report.d.mts.

/** The version of the results file's shape; a file of another version is refused by the comparison. */
export const RESULTS_VERSION = 1;

const BETTER = ['lower', 'higher'];
const TARGET_ON = ['value', 'ratio'];
const TARGET_OP = ['<=', '>='];

/**
 * Checks one figure and fills in its ratio (value / baseline). A figure that could not be measured (no sample,
 * zero, NaN) is an error here, so that a bench fails loudly instead of printing zeros.
 * @param {unknown} input
 * @returns {import('./bench-report.d.mts').BenchRecord}
 */
export function checkRecord(input) {
  if (typeof input !== 'object' || input === null) throw new Error(`a bench record must be an object, not ${input}`);
  const r = /** @type {Record<string, unknown>} */ (input);
  const where = typeof r.name === 'string' && r.name !== '' ? `bench record "${r.name}"` : 'a bench record';
  const text = (key) => {
    if (typeof r[key] !== 'string' || r[key] === '') throw new Error(`${where}: ${key} must be a non-empty string`);
    return /** @type {string} */ (r[key]);
  };
  const measured = (key) => {
    const v = r[key];
    if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) {
      throw new Error(`${where}: ${key} is ${JSON.stringify(v)}, not a measurement (a positive finite number)`);
    }
    return v;
  };
  const name = text('name');
  const unit = text('unit');
  const baselineName = text('baselineName');
  const value = measured('value');
  const baselineValue = measured('baselineValue');
  if (!BETTER.includes(/** @type {string} */ (r.better))) throw new Error(`${where}: better must be lower or higher`);
  /** @type {import('./bench-report.d.mts').BenchRecord} */
  const out = {
    name,
    value,
    unit,
    baselineName,
    baselineValue,
    ratio: value / baselineValue,
    better: /** @type {'lower' | 'higher'} */ (r.better),
  };
  if (r.target !== undefined) {
    const t = /** @type {Record<string, unknown>} */ (r.target);
    if (
      typeof t !== 'object' ||
      t === null ||
      !TARGET_ON.includes(/** @type {string} */ (t.on)) ||
      !TARGET_OP.includes(/** @type {string} */ (t.op)) ||
      typeof t.limit !== 'number' ||
      !Number.isFinite(t.limit)
    ) {
      throw new Error(`${where}: target must be {on: value|ratio, op: <=|>=, limit: number}`);
    }
    out.target = {
      on: /** @type {'value' | 'ratio'} */ (t.on),
      op: /** @type {'<=' | '>='} */ (t.op),
      limit: t.limit,
    };
  }
  if (r.note !== undefined) out.note = text('note');
  return out;
}

/**
 * Whether a figure meets its target (null without one).
 * @param {import('./bench-report.d.mts').BenchRecord} r
 */
export function targetMet(r) {
  if (!r.target) return null;
  const x = r.target.on === 'value' ? r.value : r.ratio;
  return r.target.op === '<=' ? x <= r.target.limit : x >= r.target.limit;
}

/**
 * Parses the runner's records file (one JSON object a line, as bench/report.ts appends them); a repeated name is
 * an error (two benches would claim one row).
 * @param {string} text
 */
export function parseRecords(text) {
  /** @type {import('./bench-report.d.mts').BenchRecord[]} */
  const records = [];
  const names = new Set();
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    const r = checkRecord(JSON.parse(line));
    if (names.has(r.name)) throw new Error(`two bench records are named "${r.name}"`);
    names.add(r.name);
    records.push(r);
  }
  return records;
}

/** @param {number} x */
function num(x) {
  const a = Math.abs(x);
  if (a >= 100) return x.toFixed(0);
  if (a >= 10) return x.toFixed(1);
  if (a >= 0.1) return x.toFixed(2);
  return x.toPrecision(2);
}

/** @param {import('./bench-report.d.mts').BenchRecord} r */
function targetText(r) {
  if (!r.target) return '';
  const op = r.target.op === '<=' ? '≤' : '≥';
  const limit = r.target.on === 'value' ? `${num(r.target.limit)} ${r.unit}` : `${num(r.target.limit)}× baseline`;
  return `${op} ${limit}: ${targetMet(r) ? 'met' : 'MISSED'}`;
}

/**
 * Lays out rows as columns: numbers right-aligned, the columns named in `left` left-aligned.
 * @param {string[][]} rows
 * @param {readonly number[]} left
 */
function columns(rows, left) {
  const widths = rows[0].map((_, i) => Math.max(...rows.map((row) => row[i].length)));
  return rows
    .map((row) =>
      row
        .map((cell, i) => (left.includes(i) ? cell.padEnd(widths[i]) : cell.padStart(widths[i])))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

/**
 * The one table: each figure, its baseline measured in the same run, the ratio value / baseline (with which way
 * is better) and its target if it has one.
 * @param {readonly import('./bench-report.d.mts').BenchRecord[]} records
 */
export function formatTable(records) {
  const rows = [['benchmark', 'value', 'baseline', 'baseline is', 'ratio', 'better', 'target']];
  for (const r of records) {
    rows.push([
      r.name,
      `${num(r.value)} ${r.unit}`,
      `${num(r.baselineValue)} ${r.unit}`,
      r.baselineName,
      `${num(r.ratio)}×`,
      r.better,
      targetText(r),
    ]);
  }
  const notes = records.filter((r) => r.note).map((r) => `  ${r.name}: ${r.note}`);
  return columns(rows, [0, 3, 5, 6]) + (notes.length > 0 ? `\n\nnotes:\n${notes.join('\n')}` : '');
}

/**
 * Checks a results file's content.
 * @param {unknown} input
 * @param {string} file named in errors
 * @returns {import('./bench-report.d.mts').BenchResults}
 */
export function checkResults(input, file) {
  const r = /** @type {Record<string, unknown>} */ (input);
  if (typeof r !== 'object' || r === null || r.version !== RESULTS_VERSION || !Array.isArray(r.records)) {
    throw new Error(`${file} is not a bench results file of version ${RESULTS_VERSION}`);
  }
  if (typeof r.commit !== 'string') throw new Error(`${file}: commit is missing`);
  return {
    version: RESULTS_VERSION,
    commit: r.commit,
    at: String(r.at),
    host: /** @type {import('./bench-report.d.mts').BenchResults['host']} */ (r.host),
    failed: Array.isArray(r.failed) ? r.failed.map(String) : [],
    records: r.records.map((x) => checkRecord(x)),
  };
}

/**
 * Two results side by side: each figure's ratio in both, and how the second's ratio compares with the first's.
 * Figures present in only one file are listed with a dash for the other.
 * @param {import('./bench-report.d.mts').BenchResults} a
 * @param {import('./bench-report.d.mts').BenchResults} b
 */
export function formatCompare(a, b) {
  const byName = (res) => new Map(res.records.map((r) => [r.name, r]));
  const ma = byName(a);
  const mb = byName(b);
  const names = [...ma.keys(), ...[...mb.keys()].filter((n) => !ma.has(n))];
  const rows = [['benchmark', `ratio ${a.commit}`, `ratio ${b.commit}`, 'change', '']];
  for (const n of names) {
    const ra = ma.get(n);
    const rb = mb.get(n);
    let change = '';
    let verdict = '';
    if (ra && rb) {
      const f = rb.ratio / ra.ratio;
      change = `${num(f)}×`;
      const better = rb.better === 'lower' ? f < 1 : f > 1;
      verdict = Math.abs(f - 1) < 0.05 ? 'same' : better ? 'better' : 'worse';
    }
    rows.push([n, ra ? `${num(ra.ratio)}×` : '—', rb ? `${num(rb.ratio)}×` : '—', change, verdict]);
  }
  return columns(rows, [0, 4]);
}
