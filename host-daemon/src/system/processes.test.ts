import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  childExited,
  findProcesses,
  isSameProcess,
  pidAlive,
  procStatFields,
  readCmdline,
  stopChild,
  waitForPidExit,
} from './processes';

describe('process toolkit', () => {
  it('tells a live process from a zombie and from no process at all', async () => {
    const child = spawn('sleep', ['30'], { stdio: 'ignore' });
    const pid = child.pid!;
    expect(pidAlive(pid)).toBe(true);
    expect(readCmdline(pid)).toBe('sleep\u000030\u0000');
    expect(isSameProcess(pid, 'sleep\u000030\u0000')).toBe(true);
    // A reused pid runs another command line.
    expect(isSameProcess(pid, 'sleep\u000031\u0000')).toBe(false);
    expect(findProcesses('sleep\u000030\u0000').get(pid)).toBe('sleep\u000030\u0000');

    // Until Node reaps it the child is a zombie, which already counts as ended.
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGKILL');
    await expect(waitForPidExit(pid, 5000, 5)).resolves.toBe(true);
    await exited;
    expect(pidAlive(pid)).toBe(false);
    expect(readCmdline(pid)).toBeNull();
    expect(pidAlive(0)).toBe(false);
    expect(pidAlive(-1)).toBe(false);
  });

  it('gives up waiting at the deadline for a process that lives on', async () => {
    const child = spawn('sleep', ['30'], { stdio: 'ignore' });
    try {
      await expect(waitForPidExit(child.pid!, 60, 10)).resolves.toBe(false);
    } finally {
      child.kill('SIGKILL');
    }
  });

  it("reads a process's stat fields past a command name with spaces and parens", async () => {
    // The kernel names the process after the file it ran: a link called `a (b) c) d` to sleep.
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'firedeck-proc-'));
    const odd = path.join(dir, 'a (b) c) d');
    fs.symlinkSync(execFileSync('sh', ['-c', 'command -v sleep'], { encoding: 'utf8' }).trim(), odd);
    const child = spawn(odd, ['30'], { stdio: 'ignore' });
    try {
      await new Promise<void>((resolve) => child.once('spawn', () => resolve()));
      expect(fs.readFileSync(`/proc/${child.pid!}/stat`, 'utf8')).toContain('(a (b) c) d)');
      const fields = procStatFields(child.pid!);
      expect(fields).not.toBeNull();
      expect(['S', 'R']).toContain(fields![0]);
      expect(Number(fields![2])).toBe(Number(procStatFields(process.pid)![2])); // same process group as ours
    } finally {
      await stopChild(child, 'SIGKILL');
      fs.rmSync(dir, { recursive: true, force: true });
    }
    expect(procStatFields(child.pid!)).toBeNull();
  });

  it('stops a child and reports how it ended, also when it has already ended', async () => {
    const child = spawn('sleep', ['30'], { stdio: 'ignore' });
    await expect(stopChild(child)).resolves.toEqual({ code: null, signal: 'SIGTERM' });
    await expect(stopChild(child, 'SIGKILL')).resolves.toEqual({ code: null, signal: 'SIGTERM' });
    const done = spawn('sh', ['-c', 'exit 3'], { stdio: 'ignore' });
    await expect(childExited(done)).resolves.toEqual({ code: 3, signal: null });
    await expect(childExited(done)).resolves.toEqual({ code: 3, signal: null });
  });
});
