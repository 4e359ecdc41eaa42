import fs from 'node:fs';
import path from 'node:path';
import { FiredeckError } from '../../../src/shared/errors';

/** As many symlinks as Linux follows in one path lookup before it gives up with ELOOP. */
export const MAX_SYMLINKS = 40;

export interface ResolveOptions {
  /** Follow a symlink in the last component too (default false: the path names the link itself). */
  followLast?: boolean;
}

/**
 * The host path of `guestPath` inside the image tree at `root`, resolved as the guest would see it: each
 * component that is a symlink is followed, an absolute target starts again at the image root (never at the
 * host's /), and `..` stops at the root. Components that do not exist yet are kept as written. Throws a typed
 * error after {@link MAX_SYMLINKS} links (a loop). The result always lies under `root`.
 */
export function resolveInRoot(root: string, guestPath: string, options: ResolveOptions = {}): string {
  const followLast = options.followLast ?? false;
  const resolved: string[] = [];
  const pending = guestPath.split('/').reverse();
  let links = 0;
  while (pending.length > 0) {
    const component = pending.pop()!;
    if (component === '' || component === '.') continue;
    if (component === '..') {
      resolved.pop();
      continue;
    }
    const isLast = pending.every((c) => c === '' || c === '.');
    const candidate = path.join(root, ...resolved, component);
    let target: string | null = null;
    if (!isLast || followLast) {
      try {
        if (fs.lstatSync(candidate).isSymbolicLink()) target = fs.readlinkSync(candidate);
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code !== 'ENOENT' && code !== 'ENOTDIR') throw err;
      }
    }
    if (target === null) {
      resolved.push(component);
      continue;
    }
    links++;
    if (links > MAX_SYMLINKS) {
      throw new FiredeckError(
        'invalid_params',
        `image path ${guestPath} goes through more than ${MAX_SYMLINKS} symlinks (a loop?)`,
        {
          hint: 'fix the symlinks of the image (recipe "symlinks" or the packages) so that the path resolves',
          details: { guestPath, at: `/${[...resolved, component].join('/')}` },
        },
      );
    }
    if (target.startsWith('/')) resolved.length = 0;
    pending.push(...target.split('/').reverse());
  }
  const result = path.join(root, ...resolved);
  assertInRoot(root, result);
  return result;
}

/**
 * Throws unless `hostPath` lies inside the image tree at `root`, both as written and as the host's kernel would
 * resolve its deepest existing parent directory (a symlink there would lead a write or a delete out of the
 * image). `hostPath` itself is not followed: writes replace it and deletes remove it, never its target.
 */
export function assertInRoot(root: string, hostPath: string): void {
  const inside = (base: string, p: string): boolean => {
    const rel = path.relative(base, p);
    return rel === '' || (!rel.startsWith(`..${path.sep}`) && rel !== '..' && !path.isAbsolute(rel));
  };
  const outside = (): FiredeckError =>
    new FiredeckError('permission_denied', `image path ${hostPath} resolves outside the image at ${root}`, {
      hint: 'recipe paths are resolved inside the image; a symlink must not lead out of it',
      details: { root, path: hostPath },
    });
  if (!inside(root, hostPath)) throw outside();
  const realRoot = fs.realpathSync(root);
  let parent = path.dirname(hostPath);
  if (hostPath === root) parent = root;
  for (;;) {
    let real: string;
    try {
      real = fs.realpathSync(parent);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== 'ENOENT' && code !== 'ENOTDIR') throw err;
      if (parent === root || parent === path.dirname(parent)) return;
      parent = path.dirname(parent);
      continue;
    }
    if (!inside(realRoot, real)) throw outside();
    return;
  }
}
