import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { tryPidLock } from './pidLock';

describe('pid lock dirs', () => {
  const dirs: string[] = [];
  const lockPath = (): string => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fd-pidlock-'));
    dirs.push(dir);
    return path.join(dir, 'lock');
  };
  afterEach(() => dirs.splice(0).forEach((d) => fs.rmSync(d, { recursive: true, force: true })));

  it('is taken once; a second taker learns the owner; release frees it', () => {
    const lock = lockPath();
    const first = tryPidLock(lock);
    expect(first.taken).toBe(true);
    expect(fs.readFileSync(path.join(lock, 'pid'), 'utf8')).toBe(String(process.pid));
    expect(tryPidLock(lock)).toEqual({ taken: false, owner: process.pid });
    if (first.taken) first.release();
    expect(fs.existsSync(lock)).toBe(false);
    expect(tryPidLock(lock).taken).toBe(true);
  });

  it('takes over the lock of an owner that died', () => {
    const lock = lockPath();
    const dead = spawnSync('true').pid!;
    fs.mkdirSync(lock);
    fs.writeFileSync(path.join(lock, 'pid'), String(dead));
    expect(tryPidLock(lock).taken).toBe(true);
    expect(fs.readFileSync(path.join(lock, 'pid'), 'utf8')).toBe(String(process.pid));
  });

  it('leaves a lock whose owner has not written its pid yet', () => {
    const lock = lockPath();
    fs.mkdirSync(lock);
    expect(tryPidLock(lock)).toEqual({ taken: false, owner: 0 });
    expect(fs.existsSync(lock)).toBe(true);
  });
});
