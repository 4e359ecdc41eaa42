import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { DaemonInfo } from '../../../src/shared/protocol/daemon';
import { daemonInfo } from '../daemon';
import { DriverProbes } from '../vms/driverProbes';
import { hostResources, parseMeminfo } from './hostResources';

describe('host resources', () => {
  it('reads MemTotal and MemAvailable (KiB) from meminfo text, and says which line is missing', () => {
    const text = 'MemTotal:       24683520 kB\nMemFree:        15314276 kB\nMemAvailable:   23759064 kB\n';
    expect(parseMeminfo(text)).toEqual({ totalBytes: 24683520 * 1024, availableBytes: 23759064 * 1024 });
    expect(() => parseMeminfo('MemTotal: 1 kB\n')).toThrow(/MemAvailable/);
  });

  it("measures this machine's free memory and the state dir's file system as free(1) and df(1) do", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'firedeck-res-'));
    try {
      const r = await hostResources(dir);
      const free = execFileSync('free', ['-b'], { encoding: 'utf8' }).split('\n')[1]!.trim().split(/\s+/);
      expect(r.memoryTotalBytes).toBe(Number(free[1]));
      // MemAvailable moves while the test runs: within 256 MiB of free(1)'s "available".
      expect(Math.abs(r.memoryAvailableBytes - Number(free[6]))).toBeLessThan(256 * 1024 * 1024);
      const df = execFileSync('df', ['-B1', '--output=size,avail', dir], { encoding: 'utf8' })
        .split('\n')[1]!
        .trim()
        .split(/\s+/)
        .map(Number);
      expect(r.diskTotalBytes).toBe(df[0]);
      expect(Math.abs(r.diskFreeBytes - df[1]!)).toBeLessThan(64 * 1024 * 1024);
      expect(r.diskPath).toBe(dir);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('daemon.info reports them, in its result schema', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'firedeck-res-'));
    try {
      const info = DaemonInfo.parse(
        await daemonInfo({ stateDir: dir }, new DriverProbes([]), new Date().toISOString()),
      );
      expect(info.resources?.diskPath).toBe(dir);
      expect(info.resources!.memoryAvailableBytes).toBeGreaterThan(0);
      expect(info.resources!.memoryAvailableBytes).toBeLessThanOrEqual(info.resources!.memoryTotalBytes);
      expect(info.resources!.diskFreeBytes).toBeLessThanOrEqual(info.resources!.diskTotalBytes);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
