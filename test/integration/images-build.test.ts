import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { qemuBootTest } from '../../host-daemon/src/images/bootTest';
import { buildImage, defaultCacheDir, type BuildProgress, type BuiltImage } from '../../host-daemon/src/images/builder';
import { ImageCatalog } from '../../host-daemon/src/images/catalog';
import { recipesRoot } from '../../host-daemon/src/images/recipe';
import { viewProcess } from '../../host-daemon/src/system/processes';
import { BOOT_TEST_UIDS, QEMU_SANDBOX, VM_QEMU_UIDS, inUidRange } from '../../host-daemon/src/system/uidPool';
import { FiredeckError, isFiredeckError } from '../../src/shared/errors';
import { ensureTestImage, installTestImage, type TestImage } from '../rig/testImage';
import { makeTempDir, requireTool } from '../rig/tmp';

/** A copy of the test recipe in a temp dir, edited by `edit`. */
function variantRecipe(
  root: string,
  name: string,
  edit: (recipe: Record<string, unknown>, filesDir: string) => void,
): string {
  const dir = path.join(root, name);
  fs.cpSync(path.join(recipesRoot(), 'test'), dir, { recursive: true });
  const recipe = JSON.parse(fs.readFileSync(path.join(dir, 'recipe.json'), 'utf8')) as Record<string, unknown>;
  edit(recipe, path.join(dir, 'files'));
  fs.writeFileSync(path.join(dir, 'recipe.json'), JSON.stringify(recipe, null, 2));
  return dir;
}

/** A running boot-test QEMU as /proc shows it: its ids, argv, temp dir (and its owner) and open files. */
interface BootTestQemu {
  pid: number;
  uids: number[];
  groups: number[];
  argv: string[];
  dir: string;
  dirOwner: number;
  fds: string[];
}

/** The boot test's QEMU (the one whose serial socket is in a `firedeck-boottest-` temp dir), read from /proc. */
function sampleBootTestQemu(): BootTestQemu | null {
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const view = viewProcess(Number(entry));
    if (view === null || view.argv[0] !== '/usr/bin/qemu-system-x86_64') continue;
    const socket = view.argv
      .map((a) => /path=(\/\S*\/firedeck-boottest-[^/,]+)\/serial\.sock,/.exec(a)?.[1])
      .find((d) => d !== undefined);
    if (socket === undefined) continue;
    try {
      const status = fs.readFileSync(`/proc/${view.pid}/status`, 'utf8');
      const groups = (/^Groups:[ \t]*(.*)$/m.exec(status)?.[1] ?? '').trim();
      const fdDir = `/proc/${view.pid}/fd`;
      return {
        pid: view.pid,
        uids: view.uids,
        groups: groups === '' ? [] : groups.split(/\s+/).map(Number),
        argv: view.argv,
        dir: socket,
        dirOwner: fs.statSync(socket).uid,
        fds: fs.readdirSync(fdDir).map((fd) => fs.readlinkSync(path.join(fdDir, fd))),
      };
    } catch {
      continue; // it ended while being read
    }
  }
  return null;
}

async function buildError(promise: Promise<unknown>): Promise<FiredeckError> {
  try {
    await promise;
  } catch (err) {
    return FiredeckError.from(err);
  }
  throw new Error('the build succeeded but should have failed');
}

/** Work dirs this process left in the builder's cache (there must be none after any build). */
function leftoverWorkDirs(): string[] {
  const work = path.join(defaultCacheDir(), 'work');
  if (!fs.existsSync(work)) return [];
  return fs.readdirSync(work).filter((n) => {
    try {
      return fs.readFileSync(path.join(work, n, '.firedeck-owner-pid'), 'utf8') === String(process.pid);
    } catch {
      return false;
    }
  });
}

describe('image pipeline with the test recipe', () => {
  let image: TestImage;
  let stateDir: string;
  let scratch: string;
  let catalog: ImageCatalog;
  let current: string;

  beforeAll(async () => {
    for (const tool of [
      ['/usr/bin/mmdebstrap', 'mmdebstrap'],
      ['/usr/sbin/mkfs.ext4', 'e2fsprogs'],
      ['/usr/bin/qemu-system-x86_64', 'qemu-system-x86'],
    ] as const) {
      requireTool(tool[0], tool[1]);
    }
    image = await ensureTestImage();
    stateDir = makeTempDir('images-state');
    scratch = makeTempDir('images-recipes');
    catalog = new ImageCatalog(stateDir);
    current = (await installTestImage(stateDir, image)).version;
  });

  afterAll(() => {
    if (stateDir) fs.rmSync(stateDir, { recursive: true, force: true });
    if (scratch) fs.rmSync(scratch, { recursive: true, force: true });
  });

  function assertUntouched(): void {
    expect(catalog.currentVersion('test')).toBe(current);
    expect(catalog.versions('test').map((v) => v.version)).toContain(current);
    expect(fs.readdirSync(catalog.imageDir('test')).filter((n) => n.startsWith('.staging'))).toEqual([]);
    expect(leftoverWorkDirs()).toEqual([]);
  }

  it('reuses the cached build keyed by the recipe hash', async () => {
    const t0 = Date.now();
    const again = await ensureTestImage();
    expect(Date.now() - t0).toBeLessThan(5000);
    expect(again.dir).toBe(image.dir);
    expect(image.manifest.recipeHash).toBe(path.basename(image.dir));
  });

  it('publishes a manifest with packages, kernel and the rootfs checksum', () => {
    const m = image.manifest;
    expect(m.packages.find((p) => p.name === 'linux-image-amd64')?.version).toMatch(/\S/);
    expect(m.kernel.package).toBe(`linux-image-${m.kernel.release}`);
    expect(m.rootfs.sha256).toMatch(/^[0-9a-f]{64}$/);
    const sha = execFileSync('sha256sum', [image.rootfsPath], { encoding: 'utf8' }).split(' ')[0];
    expect(sha).toBe(m.rootfs.sha256);
    // Sparse: the 1 GiB filesystem occupies far less.
    expect(fs.statSync(image.rootfsPath).blocks * 512).toBeLessThan(m.rootfs.sizeBytes * 0.8);
    // No SSH host key baked in.
    const listing = execFileSync('debugfs', ['-R', 'ls -l /etc/ssh', image.rootfsPath], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
    });
    expect(listing).toContain('sshd_config');
    expect(listing).not.toMatch(/ssh_host_/);
  });

  it('installs into the daemon catalog layout, resolvable by name and by version', () => {
    const resolved = catalog.resolve('test');
    expect(resolved.version).toBe(current);
    expect(resolved.rootfsPath).toBe(path.join(stateDir, 'images', 'test', current, 'rootfs.ext4'));
    expect(fs.readlinkSync(path.join(stateDir, 'images', 'test', 'current'))).toBe(current);
    expect(catalog.resolve(`test@${current}`).manifest.rootfs.sha256).toBe(image.manifest.rootfs.sha256);
    for (const p of [resolved.kernelPath, resolved.initrdPath, resolved.rootfsPath])
      expect(fs.existsSync(p)).toBe(true);
  });

  it('rebuilds after a one-file change from the cached base layer, boot-tests it confined, and can promote and roll back', async () => {
    const dir = variantRecipe(scratch, 'onefile', (_recipe, files) => {
      fs.appendFileSync(path.join(files, 'profile'), `# changed ${Date.now()}\n`);
    });
    const events: BuildProgress[] = [];
    let handed: Omit<BuiltImage, 'manifest'> | undefined;
    let booting = false;
    let qemu: BootTestQemu | null = null;
    const t0 = Date.now();
    const built = await buildImage({
      recipeDir: dir,
      outputParent: catalog.imageDir('test'),
      onProgress: (p) => {
        events.push(p);
        if (p.step !== 'boot-test' || p.line === null) return;
        // The guest's first console line: QEMU runs, with every file it was given open. Read it from /proc now.
        if (booting && qemu === null) qemu = sampleBootTestQemu();
        if (p.line.startsWith('booting ')) booting = true;
      },
      bootTest: (image, ...rest) => {
        handed = image;
        return qemuBootTest(image, ...rest);
      },
    });
    const seconds = (Date.now() - t0) / 1000;
    const bootSeconds = built.manifest.bootTest!.seconds;
    console.log(`one-file rebuild: ${seconds.toFixed(1)} s total, boot test ${bootSeconds.toFixed(1)} s`);
    expect(events.some((e) => e.step === 'base' && e.line?.startsWith('reusing base layer'))).toBe(true);
    expect(seconds - bootSeconds).toBeLessThan(60);
    expect(built.manifest.bootTest!.markers.sort()).toEqual(['sshd', 'vm']);
    expect(built.manifest.recipeHash).not.toBe(image.manifest.recipeHash);
    expect(new Set(events.map((e) => e.step))).toEqual(
      new Set(['prepare', 'base', 'npm', 'files', 'checks', 'rootfs', 'boot-test', 'publish']),
    );
    expect(events.at(-1)?.percent).toBe(100);

    // The boot test's QEMU ran confined: a uid of the boot tests' range (none of a VM's), no groups, every
    // syscall class denied, owning its temp dir, and holding no file outside it but the image it was handed.
    const sample = qemu as BootTestQemu | null;
    expect(sample, 'no boot-test QEMU seen in /proc while the guest printed').not.toBeNull();
    const { uids, groups, argv, dir: tempDir, dirOwner, fds } = sample!;
    console.log(
      `boot-test QEMU ${sample!.pid}: uids ${uids.join(' ')}, groups [${groups.join(' ')}], fds ${fds.join(' ')}`,
    );
    for (const u of uids) {
      expect(inUidRange(BOOT_TEST_UIDS, u), `uid ${u}`).toBe(true);
      expect(inUidRange(VM_QEMU_UIDS, u)).toBe(false);
    }
    expect(groups).toEqual([]);
    expect(argv.slice(-2)).toEqual(['-sandbox', QEMU_SANDBOX]);
    expect(dirOwner).toBe(uids[0]);
    const given = handed!;
    const foreign = fds.filter(
      (f) =>
        f.startsWith('/') &&
        !f.startsWith(`${tempDir}/`) &&
        // Anonymous memory and the device nodes any process may open hold nothing of the host's.
        !f.startsWith('/memfd:') &&
        !['/dev/null', '/dev/zero', '/dev/urandom', '/dev/random'].includes(f) &&
        ![given.rootfsPath, given.kernelPath, given.initrdPath].includes(f),
    );
    expect(foreign).toEqual([]);
    expect(fds).toContain(given.rootfsPath);
    expect(fs.statSync(path.join(catalog.imageDir('test'), built.manifest.version, 'rootfs.ext4')).uid).toBe(0);
    expect(fs.existsSync(tempDir)).toBe(false);

    expect(catalog.currentVersion('test')).toBe(current);
    catalog.promote('test', built.manifest.version);
    expect(catalog.resolve('test').version).toBe(built.manifest.version);
    expect(catalog.rollback('test').version).toBe(current);
    assertUntouched();
  });

  it('names a missing file and builds nothing', async () => {
    const dir = variantRecipe(scratch, 'missing', (recipe) => {
      (recipe.files as unknown[]).push({ src: 'no-such-file', dest: '/etc/nothing' });
    });
    const err = await buildError(buildImage({ recipeDir: dir, outputParent: catalog.imageDir('test') }));
    expect(err.kind).toBe('invalid_params');
    expect(err.message).toMatch(/no-such-file.*missing/);
    assertUntouched();
  });

  it('reports a failing check by name and keeps the previous version current', async () => {
    const dir = variantRecipe(scratch, 'badcheck', (recipe) => {
      (recipe.checks as unknown[]).push({ name: 'node is twenty', run: 'node --version', expect: '^v20' });
    });
    const err = await buildError(buildImage({ recipeDir: dir, outputParent: catalog.imageDir('test') }));
    expect(err.kind).toBe('build_failed');
    expect(err.message).toMatch(/step checks/);
    expect(err.message).toMatch(/check "node is twenty" failed/);
    expect(err.message).toMatch(/node: not found/);
    assertUntouched();
  });

  it('reports an unknown package from the base step with apt’s words', async () => {
    const dir = variantRecipe(scratch, 'badpkg', (recipe) => {
      recipe.packages = [...(recipe.packages as string[]), 'firedeck-no-such-package'];
    });
    const err = await buildError(buildImage({ recipeDir: dir, outputParent: catalog.imageDir('test') }));
    expect(err.kind).toBe('build_failed');
    expect(err.message).toMatch(/^step base: `mmdebstrap /);
    expect(err.message).toMatch(/firedeck-no-such-package/);
    expect(err.details?.tail).toBeInstanceOf(Array);
    assertUntouched();
  });

  it('fails the boot test when a readiness marker never comes', async () => {
    // `vm` is the test image's first marker (seconds into the boot, a minute at worst on a loaded machine under
    // TCG); `vnc` never comes from it. The boot test waits out its whole timeout, so it is kept short.
    const dir = variantRecipe(scratch, 'nomarker', (recipe) => {
      recipe.readiness = ['vm', 'vnc'];
      recipe.bootTest = { memoryMiB: 384, cpus: 1, timeoutSeconds: 90 };
    });
    const err = await buildError(
      buildImage({ recipeDir: dir, outputParent: catalog.imageDir('test'), bootTest: qemuBootTest }),
    );
    expect(err.kind).toBe('build_failed');
    expect(err.message).toMatch(/^step boot-test: test did not reach FIREDECK-READY vnc within 90 s/);
    expect(err.details?.seen).toEqual(['vm']);
    assertUntouched();
  }, 300_000);

  it('fails cleanly on a full disk (a small loop filesystem)', async () => {
    const loopDir = makeTempDir('images-loop');
    const img = path.join(loopDir, 'fs.img');
    const mnt = path.join(loopDir, 'mnt');
    fs.mkdirSync(mnt);
    execFileSync('truncate', ['-s', '96M', img]);
    execFileSync('mkfs.ext4', ['-q', img]);
    execFileSync('mount', ['-o', 'loop', img, mnt]);
    try {
      const err = await buildError(
        buildImage({ recipeDir: path.join(recipesRoot(), 'test'), outputParent: path.join(mnt, 'test') }),
      );
      // The operator's to fix, not the recipe's: typed, naming the filesystem and what gives space back.
      expect(err.kind).toBe('resource_exhausted');
      expect(err.message).toBe(
        `No space left on the filesystem of ${path.join(mnt, 'test')} for image test ${err.message.split(' ').pop()}`,
      );
      expect(err.hint).toMatch(/^Free space there \(df -h .*\): old versions \('firedeckd image gc'\)/);
      expect(fs.readdirSync(path.join(mnt, 'test'))).toEqual([]);
      expect(leftoverWorkDirs()).toEqual([]);
    } finally {
      execFileSync('umount', [mnt]);
      fs.rmSync(loopDir, { recursive: true, force: true });
    }
  });

  it('leaves nothing behind when interrupted', async () => {
    const controller = new AbortController();
    const promise = buildImage({
      recipeDir: path.join(recipesRoot(), 'test'),
      outputParent: catalog.imageDir('test'),
      signal: controller.signal,
      onProgress: (p) => {
        if (p.step === 'files' && p.line === null) controller.abort();
      },
    });
    const err = await buildError(promise);
    expect(isFiredeckError(err, 'cancelled')).toBe(true);
    assertUntouched();
  });
});
