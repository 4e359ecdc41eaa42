import fs from 'node:fs';
import path from 'node:path';
import { FiredeckError } from '../../../src/shared/errors';

/** Something that has a disk image open: a process (by fd or mapping) or a loop device. */
export interface ImageHolder {
  kind: 'process' | 'loop';
  /** Process id, or the loop device's name. */
  id: string;
  /** The process's command name or the loop device's path. */
  name: string;
}

/**
 * Every process that has `image` open (an fd, or a mapping of it) and every loop device backed by it, compared by
 * device and inode, so a hard link, bind mount or renamed path cannot hide a holder. This is the writer's own check
 * on top of the daemon's word that the VM is stopped: it also sees a QEMU someone started by hand or a loop mount.
 * It needs to read every process's fd table, so it refuses (rather than guesses) when it cannot.
 */
export function imageHolders(image: string, procRoot = '/proc', sysBlock = '/sys/block'): ImageHolder[] {
  const target = fs.statSync(image);
  const holders: ImageHolder[] = [];
  const unreadable: string[] = [];
  for (const entry of fs.readdirSync(procRoot)) {
    if (!/^\d+$/.test(entry)) continue;
    const proc = path.join(procRoot, entry);
    let fds: string[];
    try {
      fds = fs.readdirSync(path.join(proc, 'fd'));
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ESRCH') continue; // Gone meanwhile.
      unreadable.push(entry);
      continue;
    }
    let holds = false;
    for (const fd of fds) {
      try {
        const st = fs.statSync(path.join(proc, 'fd', fd));
        if (st.dev === target.dev && st.ino === target.ino) {
          holds = true;
          break;
        }
      } catch {
        // Closed meanwhile, or a descriptor without a file to stat.
      }
    }
    if (!holds) holds = mapsImage(path.join(proc, 'maps'), target);
    if (holds) holders.push({ kind: 'process', id: entry, name: readComm(proc) });
  }
  holders.push(...loopHolders(sysBlock, target));
  if (unreadable.length > 0) {
    throw new FiredeckError(
      'permission_denied',
      `Cannot tell whether ${image} is in use: ${unreadable.length} processes hide their open files`,
      {
        hint: 'Offline writes need root (as firedeckd runs), which can read every /proc/<pid>/fd.',
        details: { pids: unreadable.slice(0, 20) },
      },
    );
  }
  return holders;
}

/** Refuses with `conflict` when anything holds the image. */
export function assertImageUnused(image: string): void {
  const holders = imageHolders(image);
  if (holders.length === 0) return;
  const named = holders.map((h) => (h.kind === 'process' ? `pid ${h.id} (${h.name})` : `loop device ${h.name}`));
  throw new FiredeckError('conflict', `The disk image ${image} is in use by ${named.join(', ')}`, {
    hint: 'Stop the VM (or detach the loop device) first: Firedeck never writes into a disk that is in use.',
    details: { holders },
  });
}

function mapsImage(mapsFile: string, target: fs.Stats): boolean {
  let text: string;
  try {
    text = fs.readFileSync(mapsFile, 'utf8');
  } catch {
    return false;
  }
  const major = Math.floor(target.dev / 256) & 0xfff;
  const minor = (target.dev & 0xff) | ((target.dev >> 12) & 0xfff00);
  const dev = `${major.toString(16).padStart(2, '0')}:${minor.toString(16).padStart(2, '0')}`;
  const ino = String(target.ino);
  for (const line of text.split('\n')) {
    const f = line.split(/\s+/);
    if (f[3] === dev && f[4] === ino) return true;
  }
  return false;
}

function loopHolders(sysBlock: string, target: fs.Stats): ImageHolder[] {
  let names: string[];
  try {
    names = fs.readdirSync(sysBlock).filter((n) => /^loop\d+$/.test(n));
  } catch {
    return [];
  }
  const found: ImageHolder[] = [];
  for (const name of names) {
    let backing: string;
    try {
      backing = fs.readFileSync(path.join(sysBlock, name, 'loop', 'backing_file'), 'utf8').trim();
    } catch {
      continue; // Not attached.
    }
    try {
      const st = fs.statSync(backing.replace(/ \(deleted\)$/, ''));
      if (st.dev === target.dev && st.ino === target.ino) found.push({ kind: 'loop', id: name, name: `/dev/${name}` });
    } catch {
      // Backed by a file that is gone: not ours.
    }
  }
  return found;
}

function readComm(proc: string): string {
  try {
    return fs.readFileSync(path.join(proc, 'comm'), 'utf8').trim();
  } catch {
    return '?';
  }
}
