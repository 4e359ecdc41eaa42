import { spawn } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { isFiredeckError } from '../../../src/shared/errors';
import { childExited } from './processes';
import {
  BOOT_TEST_UIDS,
  QEMU_SANDBOX,
  QEMU_UID_BASE,
  QEMU_UID_COUNT,
  VM_QEMU_UIDS,
  freeUid,
  inUidRange,
  uidRangesOverlap,
  uidsInUse,
  type UidRange,
} from './uidPool';

describe('uid pool', () => {
  it('keeps the boot tests’ range apart from the VMs’ QEMU range, both in the unassigned stretch', () => {
    expect(VM_QEMU_UIDS).toMatchObject({ base: 0x70000000, count: 0x10000 });
    expect([QEMU_UID_BASE, QEMU_UID_COUNT]).toEqual([VM_QEMU_UIDS.base, VM_QEMU_UIDS.count]);
    expect(BOOT_TEST_UIDS.base).toBe(0x70010000);
    expect(uidRangesOverlap(VM_QEMU_UIDS, BOOT_TEST_UIDS)).toBe(false);
    expect(inUidRange(VM_QEMU_UIDS, BOOT_TEST_UIDS.base)).toBe(false);
    expect(inUidRange(VM_QEMU_UIDS, BOOT_TEST_UIDS.base + BOOT_TEST_UIDS.count - 1)).toBe(false);
    expect(inUidRange(BOOT_TEST_UIDS, VM_QEMU_UIDS.base + VM_QEMU_UIDS.count - 1)).toBe(false);
    // systemd leaves 0x70000000–0x7FFDFFFF unassigned.
    expect(BOOT_TEST_UIDS.base + BOOT_TEST_UIDS.count - 1).toBeLessThanOrEqual(0x7ffdffff);
    expect(uidRangesOverlap({ base: 10, count: 5, purpose: 'a' }, { base: 14, count: 1, purpose: 'b' })).toBe(true);
    expect(uidRangesOverlap({ base: 10, count: 5, purpose: 'a' }, { base: 15, count: 1, purpose: 'b' })).toBe(false);
  });

  it('denies every syscall class QEMU 7.2 can deny', () => {
    expect(QEMU_SANDBOX).toBe('on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny');
  });

  it('picks a uid in the range that nothing uses, the same one for the same seed', () => {
    const a = freeUid(BOOT_TEST_UIDS, 'build-1', new Set());
    expect(inUidRange(BOOT_TEST_UIDS, a)).toBe(true);
    expect(freeUid(BOOT_TEST_UIDS, 'build-1', new Set())).toBe(a);
    const b = freeUid(BOOT_TEST_UIDS, 'build-1', new Set([a]));
    expect(b).not.toBe(a);
    expect(inUidRange(BOOT_TEST_UIDS, b)).toBe(true);
  });

  it('wraps around the range and says so, with a hint, once every uid is taken', () => {
    const tiny: UidRange = { base: 5000, count: 3, purpose: 'a test' };
    expect(freeUid(tiny, 'x', new Set([5000, 5001]))).toBe(5002);
    expect(freeUid(tiny, 'x', new Set([5001, 5002]))).toBe(5000);
    let caught: unknown;
    try {
      freeUid(tiny, 'x', new Set([5000, 5001, 5002]));
    } catch (err) {
      caught = err;
    }
    expect(isFiredeckError(caught, 'resource_exhausted')).toBe(true);
    expect((caught as Error).message).toMatch(/no free uid left for a test/);
    expect((caught as { hint?: string }).hint).toMatch(/3 uids from 5000/);
  });

  it('sees the uid of a running process as in use', async () => {
    expect(uidsInUse().has(process.getuid!())).toBe(true);
    if (process.getuid!() !== 0) return; // only root can start a process as another uid
    const uid = freeUid(BOOT_TEST_UIDS, 'uidsInUse', uidsInUse());
    const child = spawn('sleep', ['30'], { uid, gid: uid, stdio: 'ignore' });
    const exited = childExited(child);
    await new Promise<void>((resolve, reject) => {
      child.once('spawn', resolve);
      child.once('error', reject);
    });
    try {
      expect(uidsInUse().has(uid)).toBe(true);
      expect(freeUid(BOOT_TEST_UIDS, 'uidsInUse', uidsInUse())).not.toBe(uid);
    } finally {
      child.kill('SIGKILL');
      await exited;
    }
  });
});
