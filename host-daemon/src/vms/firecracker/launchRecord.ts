import fs from 'node:fs';
import { z } from 'zod';
import { GracefulStop } from '../../../../src/shared/protocol/daemon';

/**
 * What the driver made for one Firecracker launch, kept where the (jailed) process cannot reach it: beside the
 * chroot, or in the VM's run dir when unjailed. It outlives the daemon, so that a restarted daemon still stops
 * the VM the right way and removes exactly what was made.
 */
export const LaunchRecord = z.object({
  /** Files linked into the jail whose owner changed for the VM's life, with the owner to give back. */
  restore: z.array(z.object({ path: z.string(), uid: z.number().int(), gid: z.number().int() })),
  /** The cgroup directories the jailer makes for the VM. */
  cgroupDirs: z.array(z.string()),
  /** The VM's own network namespace, when it has one, and the host end of its veth. */
  netns: z.string().nullable(),
  hostDevice: z.string().nullable(),
  /** Whether Ctrl-Alt-Del reaches the guest, from its kernel's config. */
  gracefulStop: GracefulStop,
});
export type LaunchRecord = z.infer<typeof LaunchRecord>;

export async function readLaunchRecord(file: string): Promise<LaunchRecord | null> {
  let text: string;
  try {
    text = await fs.promises.readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
  const parsed = LaunchRecord.safeParse(JSON.parse(text));
  return parsed.success ? parsed.data : null;
}

export async function writeLaunchRecord(file: string, record: LaunchRecord): Promise<void> {
  await fs.promises.writeFile(file, JSON.stringify(record), { mode: 0o600 });
}
