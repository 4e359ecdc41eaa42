import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { applyFiles, chrootArgv, expandGlob, findKernel, hashFile } from './builder';
import { loadRecipe } from './recipe';

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

  it('writes, links and prunes through an absolute symlink of the image inside the image, never on the host', async () => {
    // Stands in for the host's /run: Debian's rootfs has /var/run -> /run, which the host kernel would follow.
    const host = fs.mkdtempSync(path.join(os.tmpdir(), 'firedeck-hostrun-'));
    dirs.push(host);
    fs.writeFileSync(path.join(host, 'keep.pid'), '42');
    const root = tree(['etc/ssh/sshd_config', 'etc/ssh/ssh_host_ed25519_key', `${host.slice(1)}/old.pid`]);
    fs.mkdirSync(path.join(root, 'var'));
    fs.symlinkSync(host, path.join(root, 'var/run'));
    const recipeDir = tree(['files/marker']);
    fs.writeFileSync(path.join(recipeDir, 'files/marker'), 'from the recipe');
    fs.writeFileSync(
      path.join(recipeDir, 'recipe.json'),
      JSON.stringify({
        name: 'escape',
        suite: 'bookworm',
        packages: ['linux-image-amd64'],
        files: [{ src: 'marker', dest: '/var/run/firedeck/marker' }],
        symlinks: [{ path: '/var/run/firedeck/link', target: '/etc/passwd' }],
        prune: ['/var/run/*.pid'],
        readiness: ['vm'],
        rootfsSize: '1G',
      }),
    );
    const ran: string[][] = [];
    const logged: string[] = [];
    await applyFiles(
      loadRecipe(recipeDir),
      root,
      async (argv) => {
        ran.push([...argv]);
        return '';
      },
      (l) => logged.push(l),
    );
    expect(ran).toEqual([]);
    // The host side is as it was.
    expect(fs.readdirSync(host)).toEqual(['keep.pid']);
    expect(fs.readFileSync(path.join(host, 'keep.pid'), 'utf8')).toBe('42');
    // The guest's view: /var/run/... is <root><host>/... .
    const guestRun = path.join(root, host);
    expect(fs.readFileSync(path.join(guestRun, 'firedeck/marker'), 'utf8')).toBe('from the recipe');
    expect(fs.statSync(path.join(guestRun, 'firedeck/marker')).mode & 0o777).toBe(0o644);
    expect(fs.readlinkSync(path.join(guestRun, 'firedeck/link'))).toBe('/etc/passwd');
    expect(fs.existsSync(path.join(guestRun, 'old.pid'))).toBe(false);
    expect(fs.readlinkSync(path.join(root, 'var/run'))).toBe(host);
    expect(fs.readdirSync(path.join(root, 'etc/ssh'))).toEqual(['sshd_config']);
  });

  it('expands a prune glob through links as the guest sees them and returns the matches, not their targets', () => {
    const root = tree(['usr/lib/modules/6.1/kernel/sound/a.ko', 'data/keep']);
    fs.symlinkSync('usr/lib', path.join(root, 'lib'));
    fs.symlinkSync('/data', path.join(root, 'usr/lib/modules/6.1/kernel/linked'));
    expect(expandGlob(root, '/lib/modules/*/kernel/sound').map((p) => path.relative(root, p))).toEqual([
      'usr/lib/modules/6.1/kernel/sound',
    ]);
    expect(expandGlob(root, '/lib/modules/6.1/kernel/l*').map((p) => path.relative(root, p))).toEqual([
      'usr/lib/modules/6.1/kernel/linked',
    ]);
  });

  it('reads the kernel and initrd of /boot inside the image when they are absolute links', () => {
    const host = fs.mkdtempSync(path.join(os.tmpdir(), 'firedeck-hostboot-'));
    dirs.push(host);
    fs.writeFileSync(path.join(host, 'vmlinuz'), 'the host kernel');
    fs.writeFileSync(path.join(host, 'initrd'), 'the host initrd');
    const root = tree([`${host.slice(1)}/vmlinuz`, `${host.slice(1)}/initrd`, 'boot/.keep']);
    fs.writeFileSync(path.join(root, host, 'vmlinuz'), 'the image kernel');
    fs.writeFileSync(path.join(root, host, 'initrd'), 'the image initrd');
    fs.symlinkSync(path.join(host, 'vmlinuz'), path.join(root, 'boot/vmlinuz-6.1.0-9-amd64'));
    fs.symlinkSync(path.join(host, 'initrd'), path.join(root, 'boot/initrd.img-6.1.0-9-amd64'));
    const kernel = findKernel(root, [{ name: 'linux-image-6.1.0-9-amd64', version: '6.1.1-1' }]);
    expect(kernel).toMatchObject({ release: '6.1.0-9-amd64', packageVersion: '6.1.1-1' });
    expect(fs.readFileSync(kernel.vmlinuz, 'utf8')).toBe('the image kernel');
    expect(fs.readFileSync(kernel.initrd, 'utf8')).toBe('the image initrd');
  });
});
