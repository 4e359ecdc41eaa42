#!/usr/bin/env node
// Runs Doyensec's Electronegativity (@doyensec/electronegativity, pinned 1.10.3) over src/ and fails on every
// finding that build/electronegativity-allow.json does not name, and on every allowlist entry that no longer
// matches a finding (a fixed finding leaves the list with it).
//   - AvailableSecurityFixesGlobalCheck is left out: it asks GitHub for Electron's release list.
//   - The Electron version is the one package.json pins (devDependencies.electron), so that checks whose answer
//     depends on Electron's defaults judge the version that ships.
//   - The tool itself still asks its translation bucket for the current locale once per run (a one-second
//     timeout, no data of ours sent); offline, that fails quietly and English is used.
// Usage: node build/scripts/electronegativity.mjs [--from DIR]
//   --from DIR resolves the package from DIR's node_modules instead of the repo's (to try a version out before it
//   is a devDependency). Exit 0: nothing unexpected; 1: findings or stale allowlist entries; 2: cannot run.
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const ALLOWLIST_FILE = path.join(root, 'build/electronegativity-allow.json');
/** Global checks left out of every run, by class name (the tool matches them lowercased). */
export const EXCLUDED_CHECKS = ['AvailableSecurityFixesGlobalCheck'];
const ENTRY_KEYS = new Set(['id', 'file', 'sample', 'description', 'why']);

/**
 * Electronegativity's issues as plain records: file relative to the repo root with `/` separators.
 * @param {readonly Record<string, unknown>[]} issues the `issues` of the tool's programmatic result
 * @param {string} repoRoot
 * @returns {import('./electronegativity.d.mts').Finding[]}
 */
export function normalizeFindings(issues, repoRoot) {
  return issues.map((issue) => {
    const file = String(issue.file ?? '');
    const rel = path.isAbsolute(file) ? path.relative(repoRoot, file) : file;
    const location = /** @type {{ line?: number, column?: number } | undefined} */ (issue.location);
    const level = (/** @type {unknown} */ v) =>
      typeof v === 'object' && v !== null && 'name' in v ? String(v.name) : String(v ?? '');
    return {
      id: String(issue.id ?? ''),
      file: rel.split(path.sep).join('/'),
      line: location?.line ?? 0,
      column: location?.column ?? 0,
      severity: level(issue.severity),
      confidence: level(issue.confidence),
      description: String(issue.description ?? ''),
      sample: typeof issue.sample === 'string' ? issue.sample : '',
      manualReview: issue.manualReview === true,
    };
  });
}

/**
 * Reads and checks an allowlist: `{ "allow": [{ id, file, sample?, description?, why }] }`. Every entry names
 * the check and the file, says why in at least a sentence, and may narrow the match to findings whose sample
 * (the flagged source line or CSP) or description contains a text.
 * @param {unknown} json
 * @param {string} [source] where it came from, for messages
 * @returns {import('./electronegativity.d.mts').AllowEntry[]}
 */
export function parseAllowlist(json, source = 'allowlist') {
  if (typeof json !== 'object' || json === null || !Array.isArray(/** @type {{allow?: unknown}} */ (json).allow)) {
    throw new Error(`${source}: expected an object with an "allow" array`);
  }
  const entries = /** @type {unknown[]} */ (/** @type {{allow: unknown[]}} */ (json).allow);
  return entries.map((raw, i) => {
    const where = `${source}: allow[${i}]`;
    if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new Error(`${where} is not an object`);
    const entry = /** @type {Record<string, unknown>} */ (raw);
    for (const key of Object.keys(entry)) {
      if (!ENTRY_KEYS.has(key)) throw new Error(`${where} has an unknown key "${key}"`);
    }
    for (const key of ['id', 'file', 'why']) {
      if (typeof entry[key] !== 'string' || entry[key].trim() === '') {
        throw new Error(`${where} needs a non-empty "${key}"`);
      }
    }
    for (const key of ['sample', 'description']) {
      if (key in entry && (typeof entry[key] !== 'string' || entry[key] === '')) {
        throw new Error(`${where}: "${key}" must be a non-empty string when given`);
      }
    }
    if (/** @type {string} */ (entry.why).trim().length < 20) {
      throw new Error(`${where} (${entry.id}): "why" must explain the exception in a sentence`);
    }
    return /** @type {import('./electronegativity.d.mts').AllowEntry} */ (entry);
  });
}

/**
 * @param {import('./electronegativity.d.mts').Finding} finding
 * @param {import('./electronegativity.d.mts').AllowEntry} entry
 */
function matches(finding, entry) {
  return (
    finding.id === entry.id &&
    finding.file === entry.file &&
    (entry.sample === undefined || finding.sample.includes(entry.sample)) &&
    (entry.description === undefined || finding.description.includes(entry.description))
  );
}

/**
 * Sorts findings into the allowed (with the entry that allows each) and the unexpected, and lists the entries
 * that matched nothing.
 * @param {readonly import('./electronegativity.d.mts').Finding[]} findings
 * @param {readonly import('./electronegativity.d.mts').AllowEntry[]} allowlist
 * @returns {import('./electronegativity.d.mts').Verdict}
 */
export function applyAllowlist(findings, allowlist) {
  /** @type {import('./electronegativity.d.mts').Verdict} */
  const verdict = { allowed: [], unexpected: [], unused: [] };
  const used = new Set();
  for (const finding of findings) {
    const entry = allowlist.find((e) => matches(finding, e));
    if (entry) {
      used.add(entry);
      verdict.allowed.push({ finding, entry });
    } else {
      verdict.unexpected.push(finding);
    }
  }
  verdict.unused = allowlist.filter((e) => !used.has(e));
  return verdict;
}

/** @param {import('./electronegativity.d.mts').Finding} f */
export function formatFinding(f) {
  const head = `${f.id} ${f.file}:${f.line}:${f.column} [${f.severity}/${f.confidence}${f.manualReview ? ', review' : ''}]`;
  const lines = [head, `    ${f.description}`];
  if (f.sample) lines.push(`    > ${f.sample.trim()}`);
  lines.push(`    https://github.com/doyensec/electronegativity/wiki/${f.id}`);
  return lines.join('\n');
}

/**
 * The report and the exit code for a verdict.
 * @param {import('./electronegativity.d.mts').Verdict} verdict
 * @returns {{ text: string, ok: boolean }}
 */
export function report(verdict) {
  const out = [];
  for (const { finding, entry } of verdict.allowed) {
    out.push(`allowed: ${finding.id} ${finding.file}:${finding.line} (${entry.why})`);
  }
  if (verdict.unexpected.length > 0) {
    out.push(`\n${verdict.unexpected.length} finding(s) not in build/electronegativity-allow.json:`);
    for (const f of verdict.unexpected) out.push(formatFinding(f));
    out.push('Fix each, or add it to build/electronegativity-allow.json with the reason it is safe.');
  }
  if (verdict.unused.length > 0) {
    out.push(`\n${verdict.unused.length} allowlist entr(y/ies) matched no finding (remove them):`);
    for (const e of verdict.unused) out.push(`  ${e.id} ${e.file}${e.sample ? ` "${e.sample}"` : ''}`);
  }
  const ok = verdict.unexpected.length === 0 && verdict.unused.length === 0;
  out.push(ok ? `electronegativity: ok (${verdict.allowed.length} allowed finding(s))` : 'electronegativity: failed');
  return { text: out.join('\n'), ok };
}

/** @param {string} from */
async function loadTool(from) {
  const require = createRequire(path.join(path.resolve(from), 'package.json'));
  let entry;
  try {
    entry = require.resolve('@doyensec/electronegativity');
  } catch {
    return null;
  }
  const mod = await import(pathToFileURL(entry).href);
  return /** @type {(options: Record<string, unknown>) => Promise<{ issues: Record<string, unknown>[], errors: { file: string, message: string, tolerable: boolean }[] }>} */ (
    mod.default?.default ?? mod.default
  );
}

async function main() {
  const { values } = parseArgs({ options: { from: { type: 'string', default: root } } });
  const run = await loadTool(/** @type {string} */ (values.from));
  if (!run) {
    process.stderr.write(
      '@doyensec/electronegativity is not installed: add it with `npm install -D -E @doyensec/electronegativity@1.10.3`' +
        ' (or point --from at a directory whose node_modules has it).\n',
    );
    return 2;
  }
  const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8'));
  const electronVersion = String(pkg.devDependencies?.electron ?? '').replace(/^[\^~]/, '');
  if (!/^\d+\.\d+\.\d+/.test(electronVersion)) {
    process.stderr.write('package.json pins no Electron version in devDependencies.electron\n');
    return 2;
  }
  const allowlist = parseAllowlist(JSON.parse(fs.readFileSync(ALLOWLIST_FILE, 'utf8')), ALLOWLIST_FILE);

  // The tool logs a line when its translation download fails (always, offline); keep our output to the point.
  const log = console.log;
  console.log = (...args) => {
    if (!String(args[0]).startsWith('Could not retrieve updated translations')) log(...args);
  };
  let result;
  try {
    result = await run({
      input: path.join(root, 'src'),
      excludeFromScan: EXCLUDED_CHECKS.map((c) => c.toLowerCase()),
      isRelative: false,
      electronVersionOverride: electronVersion,
    });
  } finally {
    console.log = log;
  }

  const unparsed = result.errors.filter((e) => !e.tolerable);
  for (const e of unparsed) process.stderr.write(`cannot parse ${path.relative(root, e.file)}: ${e.message}\n`);
  const { text, ok } = report(applyAllowlist(normalizeFindings(result.issues, root), allowlist));
  process.stdout.write(`${text}\n`);
  if (unparsed.length > 0) process.stdout.write(`electronegativity: ${unparsed.length} file(s) left unchecked\n`);
  return ok && unparsed.length === 0 ? 0 : 1;
}

if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  main().then(
    (code) => process.exit(code),
    (err) => {
      process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
      process.exit(2);
    },
  );
}
