import { createHash } from 'node:crypto';
import fs from 'node:fs';
import { FiredeckError } from '../../../src/shared/errors';
import { viewProcess } from './processes';

/** Every syscall class QEMU's seccomp filter can deny, denied (`-sandbox`). */
export const QEMU_SANDBOX = 'on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny';

/** A range of uids that belong to no account: `count` uids from `base`. */
export interface UidRange {
  readonly base: number;
  readonly count: number;
  /** What the range is for, in error messages. */
  readonly purpose: string;
}

/**
 * Sandboxed QEMUs run as a uid of their own per VM from this range (systemd leaves 0x70000000–0x7FFDFFFF
 * unassigned): no passwd entry, no file on the host owned by it except the VM's run dir, so one VM's QEMU can
 * neither open, signal, ptrace nor read the memory of another's.
 */
export const QEMU_UID_BASE = 0x70000000;
export const QEMU_UID_COUNT = 0x10000;
export const VM_QEMU_UIDS: UidRange = { base: QEMU_UID_BASE, count: QEMU_UID_COUNT, purpose: "a VM's QEMU" };

/**
 * The image builder's boot-test QEMUs: a range of their own right after the VMs' (so a boot test's uid is never
 * one a VM's QEMU runs as, nor one that owns a VM's run dir), in the same unassigned stretch.
 */
export const BOOT_TEST_UIDS: UidRange = { base: 0x70010000, count: 0x1000, purpose: "a boot test's QEMU" };

/** Whether `uid` lies in `range`. */
export function inUidRange(range: UidRange, uid: number): boolean {
  return Number.isInteger(uid) && uid >= range.base && uid < range.base + range.count;
}

/** Whether two ranges share a uid. */
export function uidRangesOverlap(a: UidRange, b: UidRange): boolean {
  return a.base < b.base + b.count && b.base < a.base + a.count;
}

if (uidRangesOverlap(VM_QEMU_UIDS, BOOT_TEST_UIDS)) {
  throw new FiredeckError('internal', "the boot tests' uid range overlaps the VMs' QEMU uid range");
}

/** Every uid (real, effective, saved, filesystem) some process on this machine runs as, read from `/proc`. */
export function uidsInUse(): Set<number> {
  const inUse = new Set<number>();
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    for (const u of viewProcess(Number(entry))?.uids ?? []) inUse.add(u);
  }
  return inUse;
}

/**
 * A uid of `range` that is not in `inUse`: the first free one from a point `seed` picks (so the same seed, a VM's
 * id, tends to get the same uid). Throws `resource_exhausted` when the range is full.
 */
export function freeUid(range: UidRange, seed: string, inUse: ReadonlySet<number>): number {
  const start = createHash('sha256').update(seed).digest().readUInt32BE(0) % range.count;
  for (let i = 0; i < range.count; i++) {
    const uid = range.base + ((start + i) % range.count);
    if (!inUse.has(uid)) return uid;
  }
  throw new FiredeckError('resource_exhausted', `no free uid left for ${range.purpose}`, {
    hint: `all ${range.count} uids from ${range.base} are in use by running processes; stop some VMs or builds`,
  });
}
