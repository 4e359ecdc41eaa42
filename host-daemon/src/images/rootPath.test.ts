import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { FiredeckError } from '../../../src/shared/errors';
import { MAX_SYMLINKS, assertInRoot, resolveInRoot } from './rootPath';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

function tempDir(prefix: string): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  dirs.push(d);
  return d;
}

/** An image tree with the links Debian's rootfs has, and a few of the test's own. */
function image(): string {
  const root = tempDir('firedeck-rootpath-');
  for (const d of ['run', 'var', 'usr/bin', 'usr/lib', 'etc']) fs.mkdirSync(path.join(root, d), { recursive: true });
  fs.symlinkSync('/run', path.join(root, 'var/run'));
  fs.symlinkSync('usr/bin', path.join(root, 'bin'));
  fs.symlinkSync('../../../../../../etc', path.join(root, 'usr/lib/up'));
  return root;
}

describe('resolveInRoot', () => {
  it('re-roots an absolute symlink at the image root', () => {
    const root = image();
    expect(resolveInRoot(root, '/var/run/x')).toBe(path.join(root, 'run/x'));
    expect(resolveInRoot(root, '/var/run/a/b/c')).toBe(path.join(root, 'run/a/b/c'));
  });

  it('follows a relative symlink and clamps .. at the root', () => {
    const root = image();
    expect(resolveInRoot(root, '/bin/sh')).toBe(path.join(root, 'usr/bin/sh'));
    // Six levels up from /usr/lib is still /, as in the guest.
    expect(resolveInRoot(root, '/usr/lib/up/passwd')).toBe(path.join(root, 'etc/passwd'));
    expect(resolveInRoot(root, '/../../../etc/passwd')).toBe(path.join(root, 'etc/passwd'));
  });

  it('names the link itself unless told to follow the last component', () => {
    const root = image();
    expect(resolveInRoot(root, '/var/run')).toBe(path.join(root, 'var/run'));
    expect(resolveInRoot(root, '/var/run', { followLast: true })).toBe(path.join(root, 'run'));
    expect(resolveInRoot(root, '/')).toBe(root);
  });

  it('keeps a nonexistent tail as written, also behind a dangling link', () => {
    const root = image();
    expect(resolveInRoot(root, '/opt/new/dir/file')).toBe(path.join(root, 'opt/new/dir/file'));
    fs.symlinkSync('/srv/data', path.join(root, 'data'));
    expect(resolveInRoot(root, '/data/x')).toBe(path.join(root, 'srv/data/x'));
  });

  it('refuses a symlink loop with a typed error', () => {
    const root = image();
    fs.symlinkSync('/b', path.join(root, 'a'));
    fs.symlinkSync('a', path.join(root, 'b'));
    fs.symlinkSync('self', path.join(root, 'self'));
    for (const p of ['/a/x', '/self/x']) {
      let caught: unknown;
      try {
        resolveInRoot(root, p);
      } catch (err) {
        caught = err;
      }
      expect(caught).toBeInstanceOf(FiredeckError);
      expect(caught).toMatchObject({ kind: 'invalid_params', hint: expect.any(String) });
      expect((caught as Error).message).toContain(String(MAX_SYMLINKS));
    }
    // A chain as long as the limit still resolves.
    for (let i = 0; i < MAX_SYMLINKS; i++) fs.symlinkSync(`/l${i + 1}`, path.join(root, `l${i}`));
    fs.mkdirSync(path.join(root, `l${MAX_SYMLINKS}`));
    expect(resolveInRoot(root, '/l0/x')).toBe(path.join(root, `l${MAX_SYMLINKS}`, 'x'));
  });
});

describe('assertInRoot', () => {
  it('accepts paths in the image and refuses those that lead out, as written or through a host symlink', () => {
    const root = image();
    const outside = tempDir('firedeck-rootpath-host-');
    assertInRoot(root, path.join(root, 'etc/passwd'));
    assertInRoot(root, root);
    // The link itself may be replaced or removed: only its parent must be in the image.
    assertInRoot(root, path.join(root, 'var/run'));
    expect(() => assertInRoot(root, path.join(root, '..', 'x'))).toThrow(FiredeckError);
    expect(() => assertInRoot(root, outside)).toThrow(/outside the image/);
    fs.symlinkSync(outside, path.join(root, 'escape'));
    expect(() => assertInRoot(root, path.join(root, 'escape/x'))).toThrow(/outside the image/);
    expect(() => assertInRoot(root, path.join(root, 'escape/x/y/z'))).toThrow(/outside the image/);
    expect(() => assertInRoot(root, path.join(root, 'var/run/x'))).toThrow(/outside the image/);
  });
});
