/** Types of build/scripts/secret-scan.mjs for its unit test and for callers in TypeScript. */
export interface SecretFinding {
  /** the rule broken, e.g. 'private-key', 'constant-password', 'key-file' */
  rule: string;
  /** what the rule looks for, in words */
  what: string;
  /** relative to the scanned root, `/`-separated */
  file: string;
  /** 1-based; 0 for findings about a whole file */
  line: number;
  /** the line with the secret masked */
  excerpt: string;
}

export interface SecretRule {
  id: string;
  what: string;
  find(line: string): { start: number; end: number }[];
}

export const MAX_FILE_BYTES: number;
export const IMAGE_ROOTS: readonly string[];
export const RULES: readonly SecretRule[];
export function entropy(s: string): number;
export function looksRandom(value: string): boolean;
export function redact(line: string, span: { start: number; end: number }): string;
export function scanText(text: string, file: string): SecretFinding[];
export function scanRepo(repoRoot: string): SecretFinding[];
export function scanTree(dir: string, options?: { roots?: readonly string[]; maxFileBytes?: number }): SecretFinding[];
export function shadowFindings(text: string, file: string): SecretFinding[];
export function formatFindings(findings: readonly SecretFinding[]): string;
