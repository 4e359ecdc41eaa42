import fs from 'node:fs';

/** `/proc/<pid>/cmdline` joined by NUL without the trailing NUL, or null when there is no such process. */
export function readCmdline(pid: number): string | null {
  try {
    return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0$/, '');
  } catch {
    return null;
  }
}

/** Whether the pid names a process that still runs (a zombie has finished running). */
export function isRunning(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The state follows the parenthesised command name, which may itself contain ") ".
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    return state !== 'Z' && state !== 'X';
  } catch {
    return false;
  }
}

/** The same live process as when the handle was made: running, with the recorded command line. */
export function isSameProcess(pid: number, cmdline: string): boolean {
  return isRunning(pid) && readCmdline(pid) === cmdline;
}

/**
 * Resolves true once `pid` has stopped running, false at the deadline. Node has no exit event for a
 * process it did not spawn (one adopted after a daemon restart), so this polls /proc until the deadline.
 */
export async function waitForProcessEnd(pid: number, timeoutMs: number, intervalMs = 50): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (isRunning(pid)) {
    const left = deadline - Date.now();
    if (left <= 0) return false;
    await new Promise((resolve) => setTimeout(resolve, Math.min(intervalMs, left)));
  }
  return true;
}
