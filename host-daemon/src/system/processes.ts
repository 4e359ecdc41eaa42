import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs';

/**
 * The fields of a /proc/<pid>/stat line after the command name (field 2), so field n is at index n - 3: `[0]`
 * the state letter, `[2]` the process group, `[19]` the start time. The command name is parenthesised and may
 * hold spaces and parens itself, so fields are counted from the last `)`. Null for text that is not such a line.
 */
export function statFields(text: string): string[] | null {
  const close = text.lastIndexOf(')');
  if (close < 0) return null;
  return text
    .slice(close + 2)
    .trim()
    .split(/\s+/);
}

/** statFields of a live process's /proc/<pid>/stat; null when there is no such process. */
export function procStatFields(pid: number): string[] | null {
  try {
    return statFields(fs.readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return null;
  }
}

/** Whether `pid` names a live (not zombie) process. */
export function pidAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  const state = procStatFields(pid)?.[0];
  return state !== undefined && state !== 'Z' && state !== 'X' && state !== '';
}

/** /proc/<pid>/cmdline with its NUL separators kept; null when the process is gone. */
export function readCmdline(pid: number): string | null {
  try {
    return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8');
  } catch {
    return null;
  }
}

/**
 * The same live process as when a handle was made: running, with the recorded command line (a pid alone may
 * have been reused after a reboot or a crash).
 */
export function isSameProcess(pid: number, cmdline: string): boolean {
  return pidAlive(pid) && readCmdline(pid) === cmdline;
}

/**
 * Waits for a process that is not our child to end. Linux gives Node no exit event for such a process (no
 * pidfd in Node 20), so this polls /proc with a deadline; callers first await an event (socket close) where
 * one exists.
 */
export async function waitForPidExit(pid: number, timeoutMs: number, intervalMs = 50): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (pidAlive(pid)) {
    if (Date.now() >= deadline) return false;
    await new Promise((r) => setTimeout(r, intervalMs));
  }
  return true;
}

/** Live processes whose command line contains `needle` (e.g. a path only our VMs use), as pid → cmdline. */
export function findProcesses(needle: string): Map<number, string> {
  const found = new Map<number, string>();
  let entries: string[];
  try {
    entries = fs.readdirSync('/proc');
  } catch {
    return found;
  }
  for (const entry of entries) {
    if (!/^\d+$/.test(entry)) continue;
    const pid = Number(entry);
    if (pid === process.pid) continue;
    const cmdline = readCmdline(pid);
    if (cmdline !== null && cmdline.includes(needle) && pidAlive(pid)) found.set(pid, cmdline);
  }
  return found;
}

/** A live process as /proc shows it: what tells the daemon's own hypervisors from any other process. */
export interface ProcessView {
  pid: number;
  argv: string[];
  /** Real, effective, saved and filesystem uid (/proc/<pid>/status `Uid:`). */
  uids: number[];
  /** The executable /proc/<pid>/exe links to; null where the kernel does not say. */
  exe: string | null;
}

/** A ProcessView of `pid`, or null when it is gone. */
export function viewProcess(pid: number): ProcessView | null {
  const cmdline = readCmdline(pid);
  if (cmdline === null) return null;
  let uids: number[];
  try {
    const line = /^Uid:\s+(.*)$/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    if (line === null) return null;
    uids = line[1]!.trim().split(/\s+/).map(Number);
  } catch {
    return null;
  }
  let exe: string | null;
  try {
    exe = fs.readlinkSync(`/proc/${pid}/exe`);
  } catch {
    exe = null;
  }
  const argv = cmdline.split('\0');
  if (argv[argv.length - 1] === '') argv.pop();
  return { pid, argv, uids, exe };
}

/**
 * Whether a process's /proc/<pid>/exe is `file` (a symlink's target counts; so does the file as it was before an
 * upgrade replaced it, which the kernel shows as `<path> (deleted)`).
 */
export function runsExecutable(exe: string | null, file: string): boolean {
  if (exe === null) return false;
  let canonical: string;
  try {
    canonical = fs.realpathSync(file);
  } catch {
    return false;
  }
  return exe === canonical || exe === `${canonical} (deleted)`;
}

export interface ChildExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** Resolves when a child of ours has exited (at once if it already has), with its code or signal. */
export function childExited(child: ChildProcess): Promise<ChildExit> {
  if (child.exitCode !== null || child.signalCode !== null) {
    return Promise.resolve({ code: child.exitCode, signal: child.signalCode });
  }
  return new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
}

/** Sends `signal` to a child of ours that has not exited yet, and waits for its exit. */
export function stopChild(child: ChildProcess, signal: NodeJS.Signals = 'SIGTERM'): Promise<ChildExit> {
  if (child.exitCode === null && child.signalCode === null) child.kill(signal);
  return childExited(child);
}
