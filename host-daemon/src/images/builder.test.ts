import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { chrootArgv, expandGlob, hashFile } from './builder';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

function tree(paths: string[]): string {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'firedeck-glob-'));
  dirs.push(root);
  for (const p of paths) {
    fs.mkdirSync(path.join(root, path.dirname(p)), { recursive: true });
    fs.writeFileSync(path.join(root, p), '');
  }
  return root;
}

describe('builder helpers', () => {
  it('expands * within one path segment only, under the root', () => {
    const root = tree([
      'usr/lib/modules/6.1/kernel/drivers/gpu/a.ko',
      'usr/lib/modules/6.2/kernel/drivers/gpu/b.ko',
      'usr/lib/modules/6.2/kernel/sound/c.ko',
    ]);
    expect(
      expandGlob(root, '/usr/lib/modules/*/kernel/drivers/gpu')
        .map((p) => path.relative(root, p))
        .sort(),
    ).toEqual(['usr/lib/modules/6.1/kernel/drivers/gpu', 'usr/lib/modules/6.2/kernel/drivers/gpu']);
    expect(expandGlob(root, '/usr/share/doc')).toEqual([]);
    expect(expandGlob(root, '/usr/lib/modules/6.*/kernel/sound').map((p) => path.relative(root, p))).toEqual([
      'usr/lib/modules/6.2/kernel/sound',
    ]);
  });

  it('runs chroot commands in a private mount namespace', () => {
    const argv = chrootArgv('/some/root', 'true');
    expect(argv.slice(0, 4)).toEqual(['unshare', '--mount', '--propagation', 'private']);
    expect(argv.at(-2)).toBe('/some/root');
    expect(argv.at(-1)).toBe('true');
  });

  it('hashes a sparse file like sha256sum', async () => {
    const root = tree(['f']);
    const f = path.join(root, 'f');
    fs.truncateSync(f, 4 << 20);
    expect(await hashFile(f)).toBe('bb9f8df61474d25e71fa00722318cd387396ca1736605e1248821cc0de3d3af8');
  });
});
