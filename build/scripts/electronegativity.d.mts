/** Types of build/scripts/electronegativity.mjs for its unit test. */
export interface Finding {
  id: string;
  /** relative to the repo root, `/`-separated */
  file: string;
  line: number;
  column: number;
  severity: string;
  confidence: string;
  description: string;
  /** the flagged source line or CSP string, '' when the tool gives none */
  sample: string;
  manualReview: boolean;
}

export interface AllowEntry {
  id: string;
  file: string;
  /** the finding's sample must contain this */
  sample?: string;
  /** the finding's description must contain this */
  description?: string;
  why: string;
}

export interface Verdict {
  allowed: { finding: Finding; entry: AllowEntry }[];
  unexpected: Finding[];
  unused: AllowEntry[];
}

export const ALLOWLIST_FILE: string;
export const EXCLUDED_CHECKS: readonly string[];
export function normalizeFindings(issues: readonly Record<string, unknown>[], repoRoot: string): Finding[];
export function parseAllowlist(json: unknown, source?: string): AllowEntry[];
export function applyAllowlist(findings: readonly Finding[], allowlist: readonly AllowEntry[]): Verdict;
export function formatFinding(f: Finding): string;
export function report(verdict: Verdict): { text: string; ok: boolean };
