import { spawn } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { findProcesses, isSameProcess, pidAlive, readCmdline, waitForPidExit } from './processes';

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
});
