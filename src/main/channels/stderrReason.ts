/**
 * The line of a failed firedeckd command's stderr that says why: its own `firedeckd…: …` message when there
 * is one (usage text may follow it), else the last non-empty line.
 */
export function stderrReason(stderr: string): string | null {
  const lines = stderr
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l.length > 0);
  const own = lines.filter((l) => /^firedeckd[\w -]*: /.test(l));
  return own.at(-1) ?? lines.at(-1) ?? null;
}
