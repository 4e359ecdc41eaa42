import fs from 'node:fs';
import path from 'node:path';
import { pidAlive } from './processes';

export type PidLock = { taken: true; release: () => void } | { taken: false; owner: number };

/**
 * A lock dir holding its owner's pid (mkdir is atomic). Takes the lock, also over a dead owner's, or says who
 * holds it: owner 0 means the dir exists but its pid is not written yet (an owner in the middle of taking it).
 */
export function tryPidLock(lockDir: string): PidLock {
  for (;;) {
    try {
      fs.mkdirSync(lockDir);
      fs.writeFileSync(path.join(lockDir, 'pid'), String(process.pid));
      return { taken: true, release: () => fs.rmSync(lockDir, { recursive: true, force: true }) };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    let owner = 0;
    try {
      owner = Number(fs.readFileSync(path.join(lockDir, 'pid'), 'utf8'));
    } catch {
      // Being created right now.
    }
    if (!(owner > 0 && !pidAlive(owner))) return { taken: false, owner };
    fs.rmSync(lockDir, { recursive: true, force: true });
  }
}
