import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import {
  ALLOWLIST_FILE,
  applyAllowlist,
  normalizeFindings,
  parseAllowlist,
  report,
  type AllowEntry,
} from './scripts/electronegativity.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/** Issues as Electronegativity 1.10.3's programmatic run returns them for src/ (absolute paths, as without -r). */
const SAMPLE_ISSUES: Record<string, unknown>[] = [
  {
    file: path.join(root, 'src/main/index.ts'),
    location: { line: 75, column: 16 },
    id: 'CONTEXT_ISOLATION_JS_CHECK',
    description: 'Review the use of the contextIsolation option',
    severity: { value: 3, name: 'HIGH' },
    confidence: { value: 1, name: 'FIRM' },
    sample: 'const win = new BrowserWindow(mainWindowOptions(preloadFile));',
    manualReview: false,
  },
  {
    file: path.join(root, 'src/main/index.ts'),
    location: { line: 64, column: 17 },
    id: 'CSP_GLOBAL_CHECK',
    description: 'Failed to parse CSP, it may not be valid.',
    severity: { value: 1, name: 'LOW' },
    confidence: { value: 0, name: 'TENTATIVE' },
    manualReview: true,
  },
  {
    file: path.join(root, 'src/main/index.ts'),
    location: { line: 42, column: 44 },
    id: 'OPEN_EXTERNAL_JS_CHECK',
    description: 'Review the use of openExternal',
    severity: { value: 2, name: 'MEDIUM' },
    confidence: { value: 0, name: 'TENTATIVE' },
    sample: 'hardenWebContents(contents, (url) => void shell.openExternal(url)),',
    manualReview: true,
  },
];

const why = 'A reason long enough to be a sentence.';
const entry = (e: Omit<AllowEntry, 'why'>): AllowEntry => ({ ...e, why });

describe('the electronegativity allowlist', () => {
  const findings = normalizeFindings(SAMPLE_ISSUES, root);

  it('makes the tool’s issues plain records with repo-relative files', () => {
    expect(findings[0]).toEqual({
      id: 'CONTEXT_ISOLATION_JS_CHECK',
      file: 'src/main/index.ts',
      line: 75,
      column: 16,
      severity: 'HIGH',
      confidence: 'FIRM',
      description: 'Review the use of the contextIsolation option',
      sample: 'const win = new BrowserWindow(mainWindowOptions(preloadFile));',
      manualReview: false,
    });
    expect(findings[1]!.sample).toBe('');
  });

  it('allows a finding only when id, file and the given sample or description all match', () => {
    const allow = [
      entry({ id: 'CONTEXT_ISOLATION_JS_CHECK', file: 'src/main/index.ts', sample: 'mainWindowOptions(' }),
      entry({ id: 'CSP_GLOBAL_CHECK', file: 'src/main/index.ts', description: 'Failed to parse CSP' }),
    ];
    const verdict = applyAllowlist(findings, allow);
    expect(verdict.allowed.map((a) => a.finding.id)).toEqual(['CONTEXT_ISOLATION_JS_CHECK', 'CSP_GLOBAL_CHECK']);
    expect(verdict.unexpected.map((f) => f.id)).toEqual(['OPEN_EXTERNAL_JS_CHECK']);
    expect(verdict.unused).toEqual([]);
    const { ok, text } = report(verdict);
    expect(ok).toBe(false);
    expect(text).toContain('OPEN_EXTERNAL_JS_CHECK src/main/index.ts:42:44 [MEDIUM/TENTATIVE, review]');
    expect(text).toContain('> hardenWebContents(contents, (url) => void shell.openExternal(url)),');
  });

  it('does not let an entry for one file, check or source line cover another', () => {
    for (const e of [
      entry({ id: 'CONTEXT_ISOLATION_JS_CHECK', file: 'src/main/other.ts' }),
      entry({ id: 'SANDBOX_JS_CHECK', file: 'src/main/index.ts' }),
      entry({ id: 'CONTEXT_ISOLATION_JS_CHECK', file: 'src/main/index.ts', sample: 'new BrowserWindow({' }),
      entry({ id: 'CSP_GLOBAL_CHECK', file: 'src/main/index.ts', description: 'vulnerable' }),
    ]) {
      const verdict = applyAllowlist(findings, [e]);
      expect(verdict.allowed, JSON.stringify(e)).toEqual([]);
      expect(verdict.unused).toEqual([e]);
    }
  });

  it('fails on an entry that matches nothing, and passes when every finding is allowed', () => {
    const all = [
      entry({ id: 'CONTEXT_ISOLATION_JS_CHECK', file: 'src/main/index.ts' }),
      entry({ id: 'CSP_GLOBAL_CHECK', file: 'src/main/index.ts' }),
      entry({ id: 'OPEN_EXTERNAL_JS_CHECK', file: 'src/main/index.ts', sample: 'shell.openExternal(url)' }),
    ];
    expect(report(applyAllowlist(findings, all)).ok).toBe(true);
    const stale = entry({ id: 'AUXCLICK_JS_CHECK', file: 'src/main/index.ts' });
    const verdict = applyAllowlist(findings, [...all, stale]);
    expect(verdict.unused).toEqual([stale]);
    const { ok, text } = report(verdict);
    expect(ok).toBe(false);
    expect(text).toContain('matched no finding');
    expect(text).toContain('AUXCLICK_JS_CHECK src/main/index.ts');
  });

  it('refuses entries without a reason, with unknown keys or of the wrong shape', () => {
    const ok = { id: 'X', file: 'src/a.ts', why };
    expect(parseAllowlist({ allow: [ok] })).toEqual([ok]);
    expect(() => parseAllowlist({})).toThrow(/"allow" array/);
    expect(() => parseAllowlist({ allow: [{ id: 'X', file: 'src/a.ts' }] })).toThrow(/non-empty "why"/);
    expect(() => parseAllowlist({ allow: [{ ...ok, why: 'fine' }] })).toThrow(/in a sentence/);
    expect(() => parseAllowlist({ allow: [{ ...ok, line: 3 }] })).toThrow(/unknown key "line"/);
    expect(() => parseAllowlist({ allow: [{ ...ok, sample: '' }] })).toThrow(/"sample" must be a non-empty string/);
    expect(() => parseAllowlist({ allow: ['X'] })).toThrow(/allow\[0\] is not an object/);
  });

  it('has a well-formed allowlist in the repo that names only files that exist', () => {
    const allow = parseAllowlist(JSON.parse(fs.readFileSync(ALLOWLIST_FILE, 'utf8')), ALLOWLIST_FILE);
    expect(allow.length).toBeGreaterThan(0);
    for (const e of allow) expect(fs.existsSync(path.join(root, e.file)), e.file).toBe(true);
    // each sample still occurs in its file, so an entry cannot silently outlive the code it excuses
    for (const e of allow.filter((a) => a.sample !== undefined && a.file.endsWith('.ts'))) {
      expect(fs.readFileSync(path.join(root, e.file), 'utf8'), `${e.id}: ${e.sample}`).toContain(e.sample);
    }
  });

  it('exits 2 with the install command when the tool cannot be found', () => {
    const empty = fs.mkdtempSync(path.join(os.tmpdir(), 'eng-'));
    try {
      let failure: { status: number | null; stderr: Buffer } | undefined;
      try {
        execFileSync(process.execPath, [path.join(root, 'build/scripts/electronegativity.mjs'), '--from', empty], {
          stdio: 'pipe',
        });
      } catch (err) {
        failure = err as { status: number | null; stderr: Buffer };
      }
      expect(failure?.status).toBe(2);
      expect(failure?.stderr.toString()).toContain('npm install -D -E @doyensec/electronegativity@1.10.3');
    } finally {
      fs.rmSync(empty, { recursive: true, force: true });
    }
  });
});
