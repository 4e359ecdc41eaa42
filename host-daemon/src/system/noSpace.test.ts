import { describe, expect, it } from 'vitest';
import { FiredeckError } from '../../../src/shared/errors';
import { isNoSpace, noSpaceError } from './noSpace';

describe('a full disk, told apart from other failures', () => {
  it('is ENOSPC, SQLite’s full store, or a child’s stderr saying so, also as the cause of a wrapping error', () => {
    expect(isNoSpace(Object.assign(new Error('write failed'), { code: 'ENOSPC' }))).toBe(true);
    expect(isNoSpace(Object.assign(new Error('database or disk is full'), { code: 'SQLITE_FULL' }))).toBe(true);
    expect(isNoSpace({ stderr: "cp: error writing 'rootfs.raw': No space left on device" })).toBe(true);
    expect(isNoSpace({ stderr: 'Could not allocate block in ext2 filesystem while populating file system' })).toBe(
      true,
    );
    expect(isNoSpace(new FiredeckError('internal', 'Could not clone', { cause: { code: 'ENOSPC' } }))).toBe(true);
    expect(isNoSpace(new Error('EACCES: permission denied'))).toBe(false);
    expect(isNoSpace('No space left on device')).toBe(false);
  });

  it('becomes resource_exhausted naming the place and the fix; anything else is left alone', () => {
    const e = noSpaceError({ code: 'ENOSPC' }, 'the disks of VM web', '/var/lib/firedeck', 'destroy old VMs');
    expect(e).toMatchObject({ kind: 'resource_exhausted' });
    expect(e!.message).toBe('No space left on the filesystem of /var/lib/firedeck for the disks of VM web');
    expect(e!.hint).toMatch(/^Free space there \(df -h \/var\/lib\/firedeck\): destroy old VMs\./);
    expect(noSpaceError(new Error('boom'), 'x', '/d', 'y')).toBeNull();
  });
});
