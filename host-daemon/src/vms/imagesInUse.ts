import fs from 'node:fs';
import type { Vm } from '../../../src/shared/protocol/vm';
import { openDb, stateDbPath } from '../store/db';
import { VmStore } from '../store/vmStore';

/**
 * The image versions (`name@version`) that VMs still boot from. Every VM that is not destroyed is pinned to
 * the version it was made from: its kernel and initrd come from there at each start, and a qcow2 overlay
 * reads its backing file from there. `image gc` must keep all of them.
 */
export function imagesInUse(vms: readonly Pick<Vm, 'image' | 'state'>[]): Set<string> {
  return new Set(vms.filter((vm) => vm.state !== 'destroyed').map((vm) => vm.image));
}

/** The names of the VMs (not destroyed) pinned to each image version (`name@version` → names). */
export function vmsByImage(vms: readonly Pick<Vm, 'image' | 'state' | 'name'>[]): Map<string, string[]> {
  const by = new Map<string, string[]>();
  for (const vm of vms) {
    if (vm.state === 'destroyed') continue;
    by.set(vm.image, [...(by.get(vm.image) ?? []), vm.name]);
  }
  return by;
}

/** `imagesInUse` of the VMs recorded in a state dir, for `firedeckd image gc` run beside (or without) the daemon. */
export function imagesInUseAt(stateDir: string): Set<string> {
  const file = stateDbPath(stateDir);
  if (!fs.existsSync(file)) return new Set();
  const db = openDb(file);
  try {
    return imagesInUse(new VmStore(db).list().map((r) => r.vm));
  } finally {
    db.close();
  }
}
