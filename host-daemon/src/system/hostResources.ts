import fs from 'node:fs';
import type { HostResources } from '../../../src/shared/protocol/daemon';

export interface HostMemory {
  totalBytes: number;
  availableBytes: number;
}

/** MemTotal and MemAvailable from the text of /proc/meminfo (its figures are in KiB). */
export function parseMeminfo(text: string): HostMemory {
  const field = (name: string): number => {
    const m = new RegExp(`^${name}:\\s+(\\d+) kB$`, 'm').exec(text);
    if (!m) throw new Error(`/proc/meminfo has no ${name} line`);
    return Number(m[1]) * 1024;
  };
  return { totalBytes: field('MemTotal'), availableBytes: field('MemAvailable') };
}

export async function hostMemory(meminfoPath = '/proc/meminfo'): Promise<HostMemory> {
  return parseMeminfo(await fs.promises.readFile(meminfoPath, 'utf8'));
}

/** Free memory (/proc/meminfo) and free space of the file system that holds `stateDir` (statfs). */
export async function hostResources(stateDir: string, meminfoPath = '/proc/meminfo'): Promise<HostResources> {
  const [memory, disk] = await Promise.all([hostMemory(meminfoPath), fs.promises.statfs(stateDir)]);
  return {
    memoryTotalBytes: memory.totalBytes,
    memoryAvailableBytes: memory.availableBytes,
    diskPath: stateDir,
    diskTotalBytes: disk.blocks * disk.bsize,
    // `bavail`: what an unprivileged writer may use; the root-reserved blocks are not the VMs' to take.
    diskFreeBytes: disk.bavail * disk.bsize,
  };
}
