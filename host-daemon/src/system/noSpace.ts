import { FiredeckError } from '../../../src/shared/errors';

/** Whether an error (a Node one, a child's stderr, or an error that quotes either) says the disk is full. */
export function isNoSpace(err: unknown): boolean {
  if (typeof err !== 'object' || err === null) return false;
  const e = err as { code?: unknown; message?: unknown; stderr?: unknown; cause?: unknown };
  if (e.code === 'ENOSPC' || e.code === 'SQLITE_FULL') return true;
  const text = [e.message, e.stderr].filter((t): t is string => typeof t === 'string').join('\n');
  // ext2fs (mkfs.ext4 -d, debugfs) says it its own way.
  if (/No space left on device|ENOSPC|database or disk is full|Could not allocate block/i.test(text)) return true;
  return e.cause !== undefined && e.cause !== err && isNoSpace(e.cause);
}

/**
 * The typed error for work that ran out of disk space in `dir`: `resource_exhausted`, saying what could not be
 * made and how to get room back. Null when `err` is about something else.
 */
export function noSpaceError(err: unknown, what: string, dir: string, freeing: string): FiredeckError | null {
  if (!isNoSpace(err)) return null;
  return new FiredeckError('resource_exhausted', `No space left on the filesystem of ${dir} for ${what}`, {
    hint: `Free space there (df -h ${dir}): ${freeing}. Then try again; nothing of the attempt was kept.`,
    cause: err,
  });
}
