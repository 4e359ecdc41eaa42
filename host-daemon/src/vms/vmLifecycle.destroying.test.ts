import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { deleteLink } from '../net/links';
import { newVm } from '../store/testing/newVm';
import { testVmService, type TestVmService } from './testing/testVmService';

// Reconcile (re)creates the daemon's bridge: this file's own name, never another suite's.
const BRIDGE = 'fdrcbr1';
const PREFIX = 'fdrc';
const CIDR = '10.213.141.0/24';

const root = process.getuid?.() === 0;
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'firedeck-destroying-'));
const stateDir = path.join(dir, 'state');
const immutable: string[] = [];
const open: TestVmService[] = [];

/** A VmService as firedeckd builds it, on the store in `stateDir` (a second one is the restarted daemon). */
function daemon(): TestVmService {
  const made = testVmService({ stateDir, runDir: path.join(dir, 'run'), bridge: BRIDGE, prefix: PREFIX, cidr: CIDR });
  open.push(made);
  return made;
}

function closeAll(): void {
  for (const made of open.splice(0)) made.close();
}

afterEach(closeAll);

afterAll(async () => {
  for (const file of immutable) execFileSync('chattr', ['-i', file]);
  if (root) await deleteLink(BRIDGE).catch(() => undefined);
  fs.rmSync(dir, { recursive: true, force: true });
});

describe.skipIf(!root)('destroy', () => {
  it('marks the VM destroying before deleting its disks; a restarted daemon finishes the destroy', async () => {
    const id = 'vm-00000000000000d1';
    const first = daemon();
    first.vms.insert(newVm(id, 'doomed'));
    first.vms.update(id, { state: 'stopped' });
    const vmDir = path.join(stateDir, 'vms', id);
    fs.mkdirSync(vmDir, { recursive: true });
    const rootfs = path.join(vmDir, 'rootfs.qcow2');
    fs.writeFileSync(rootfs, 'disk');
    fs.writeFileSync(path.join(vmDir, 'config.img'), 'config');
    // The disk cannot be deleted (root included): the destroy stops half-way, as a kill -9 there would.
    execFileSync('chattr', ['+i', rootfs]);
    immutable.push(rootfs);
    await expect(first.service.destroy(id)).rejects.toThrow(/rootfs\.qcow2/);
    expect(first.vms.require(id).vm.state).toBe('destroying');
    expect(fs.existsSync(rootfs)).toBe(true);
    closeAll();

    execFileSync('chattr', ['-i', rootfs]);
    immutable.pop();
    const second = daemon();
    const report = await second.service.reconcile();
    expect(report.orphansRemoved).toContain(`vm:${id}`);
    expect(second.vms.require(id).vm.state).toBe('destroyed');
    expect(fs.existsSync(vmDir)).toBe(false);
  });
});
