import fs from 'node:fs';
import os from 'node:os';
import { FiredeckError } from '../../../src/shared/errors';
import { peerCredAddonPath } from '../rpc/peerCredentials';

/** Opens an existing TAP device as root and returns its descriptor (close-on-exec), to hand to a hypervisor. */
export type TapOpener = (name: string) => number;

let opener: TapOpener | null = null;

/**
 * The addon's `openTap` (TUNSETIFF on /dev/net/tun), loaded once. An unprivileged QEMU cannot attach to a
 * root-owned TAP itself; the daemon opens it and passes the descriptor in (`-netdev tap,fd=N`).
 */
export function tapOpener(file = peerCredAddonPath()): TapOpener {
  if (opener !== null) return opener;
  const fix = 'rebuild the daemon (npm run build -w host-daemon) or reinstall the firedeckd package';
  if (!fs.existsSync(file)) {
    throw new FiredeckError('unavailable', `cannot open TAP devices: the addon ${file} is missing`, { hint: fix });
  }
  const mod: { exports: unknown } = { exports: {} };
  process.dlopen(mod, file, os.constants.dlopen.RTLD_NOW);
  const exported = (mod.exports as { openTap?: unknown }).openTap;
  if (typeof exported !== 'function') {
    throw new FiredeckError('unavailable', `cannot open TAP devices: ${file} has no openTap`, { hint: fix });
  }
  const open = exported as (name: string) => number;
  opener = (name) => {
    try {
      return open(name);
    } catch (err) {
      throw new FiredeckError('internal', `cannot open TAP ${name}: ${(err as Error).message}`, { cause: err });
    }
  };
  return opener;
}
