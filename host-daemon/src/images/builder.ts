import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { FiredeckError } from '../../../src/shared/errors';
import {
  IMAGE_BUILD_STEPS,
  type ImageBuildStep,
  type ImageManifest,
  type ImagePackage,
  type NpmInstalledPackage,
} from '../../../src/shared/protocol/image';
import { pidAlive } from '../system/processes';
import { runCommand } from './command';
import { checkFirecrackerKernel, defaultFirecrackerKernel, gracefulStopOf } from './firecrackerKernel';
import { BUILDER_VERSION, loadRecipe, recipeFilePath, type LoadedRecipe, type Recipe } from './recipe';
import { debianArchiveUri } from './sources';
import { baseLayerFile, layersDir, markLayerUsed, npmInventoryFile, npmLayerFile } from './layerCache';
import { installNpmGlobals } from './npmStep';
import { noSpaceError } from '../system/noSpace';
import { assertInRoot, resolveInRoot } from './rootPath';

export const BUILD_STEPS = IMAGE_BUILD_STEPS;
export type BuildStep = ImageBuildStep;

/** One progress event: a step starting (line null), a log line of a step, or a known percentage. */
export interface BuildProgress {
  step: BuildStep;
  /** Overall progress when known, else null. */
  percent: number | null;
  line: string | null;
}

/** The files of a built image version and its manifest. */
export interface BuiltImage {
  dir: string;
  kernelPath: string;
  initrdPath: string;
  rootfsPath: string;
  manifest: ImageManifest;
}

/** Runs the recipe's boot test against the built (unpublished) files; throws when a marker is not reached. */
export type BootTester = (
  image: Omit<BuiltImage, 'manifest'>,
  loaded: LoadedRecipe,
  log: (line: string) => void,
  signal: AbortSignal | undefined,
) => Promise<{ markers: string[] }>;

export interface BuildOptions {
  /** `images/<name>`, holding `recipe.json` and `files/`. */
  recipeDir: string;
  /** The image is published as `<outputParent>/<version>` by one rename. */
  outputParent: string;
  /** Defaults to `<UTC timestamp>-<12 hex of the recipe hash>`. */
  version?: string;
  /** Layers and work dirs; default `${FIREDECK_CACHE_DIR:-/var/cache/firedeck}`. */
  cacheDir?: string;
  onProgress?: (p: BuildProgress) => void;
  signal?: AbortSignal;
  bootTest?: BootTester;
  /**
   * An uncompressed `vmlinux` for Firecracker (which cannot boot Debian's compressed, module-based kernel);
   * published beside the image as `vmlinux` and recorded in the manifest. Default: FIREDECK_FIRECRACKER_KERNEL.
   */
  firecrackerKernel?: string | null;
}

export function defaultCacheDir(): string {
  return process.env.FIREDECK_CACHE_DIR || '/var/cache/firedeck';
}

/** The file name of the Firecracker kernel inside a published version. */
export const FIRECRACKER_KERNEL_FILE = 'vmlinux';

const CHROOT_PATH = 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/**
 * Builds a golden image from its recipe: cached base layer (mmdebstrap) → cached npm layer → users, files,
 * units → checks in the image → mkfs.ext4 -d → optional boot test → publish by atomic rename with a manifest.
 * A failure or abort leaves nothing published and removes the work dir.
 */
export async function buildImage(options: BuildOptions): Promise<BuiltImage> {
  const started = Date.now();
  const cacheDir = options.cacheDir ?? defaultCacheDir();
  const signal = options.signal;
  const hasBoot = options.bootTest !== undefined;
  const emit = (step: BuildStep, line: string | null, percent: number | null = null): void => {
    options.onProgress?.({ step, percent, line });
  };
  const begin = (step: BuildStep): void => {
    if (signal?.aborted)
      throw new FiredeckError('cancelled', `image build cancelled before step ${step}`, { details: { step } });
    const index = BUILD_STEPS.indexOf(step);
    emit(step, null, Math.round((index / BUILD_STEPS.length) * 100));
  };
  const run = (step: BuildStep, argv: readonly string[], capture = false, quiet = false): Promise<string> =>
    runCommand(argv, { step, signal, capture, onLine: quiet ? undefined : (line) => emit(step, line) });

  begin('prepare');
  const loaded = loadRecipe(options.recipeDir);
  const { recipe } = loaded;
  const version = options.version ?? `${timestamp(new Date())}-${loaded.hash.slice(0, 12)}`;
  const finalDir = path.join(options.outputParent, version);
  if (fs.existsSync(finalDir)) {
    throw new FiredeckError('conflict', `image ${recipe.name} version ${version} already exists at ${finalDir}`);
  }
  requireTools(recipe);
  fs.mkdirSync(layersDir(cacheDir), { recursive: true });
  fs.mkdirSync(path.join(cacheDir, 'work'), { recursive: true });
  fs.mkdirSync(options.outputParent, { recursive: true });
  removeStaleWorkDirs(path.join(cacheDir, 'work'));
  removeStaleWorkDirs(layersDir(cacheDir));
  removeStaleWorkDirs(options.outputParent);

  const work = makeOwnedDir(path.join(cacheDir, 'work'), `build-${recipe.name}-`);
  // Staged beside its final place so that publishing is one rename on the same filesystem.
  const staging = makeOwnedDir(options.outputParent, `.staging-${version}-`);
  const root = path.join(work, 'root');
  let published = false;
  try {
    begin('base');
    const baseTar = await ensureBaseLayer(
      loaded,
      cacheDir,
      (argv) => run('base', argv),
      (l) => emit('base', l),
    );
    fs.mkdirSync(root);
    await run('base', ['tar', '-C', root, '--xattrs', '--xattrs-include=*', '--numeric-owner', '-xpf', baseTar]);

    begin('npm');
    let npmInstalled: NpmInventory = { globals: [], dependencies: [] };
    if (recipe.npmGlobals.length > 0) {
      const layer = await ensureNpmLayer(
        loaded,
        cacheDir,
        work,
        signal,
        (argv) => run('npm', argv),
        (l) => emit('npm', l),
      );
      npmInstalled = layer.inventory;
      await run('npm', ['tar', '-C', root, '--numeric-owner', '-xpf', layer.tar]);
    } else {
      emit('npm', 'no npm globals in this recipe');
    }

    begin('files');
    await applyFiles(
      loaded,
      root,
      (argv) => run('files', argv),
      (l) => emit('files', l),
    );

    begin('checks');
    await runChecks(
      recipe,
      root,
      (argv, capture) => run('checks', argv, capture),
      (l) => emit('checks', l),
    );
    const packages = parsePackages(
      await run('checks', chrootArgv(root, "dpkg-query -W -f '${Package}\\t${Version}\\n'"), true, true),
    );
    const kernel = findKernel(root, packages);

    begin('rootfs');
    const rootfsPath = path.join(staging, 'rootfs.ext4');
    const kernelPath = path.join(staging, 'vmlinuz');
    const initrdPath = path.join(staging, 'initrd.img');
    fs.copyFileSync(kernel.vmlinuz, kernelPath);
    fs.copyFileSync(kernel.initrd, initrdPath);
    const firecrackerKernel =
      options.firecrackerKernel === undefined ? defaultFirecrackerKernel() : options.firecrackerKernel;
    let firecrackerGracefulStop: ImageManifest['kernel']['firecrackerGracefulStop'] = null;
    if (firecrackerKernel !== null) {
      checkFirecrackerKernel(firecrackerKernel);
      fs.copyFileSync(firecrackerKernel, path.join(staging, FIRECRACKER_KERNEL_FILE), fs.constants.COPYFILE_FICLONE);
      firecrackerGracefulStop = gracefulStopOf(firecrackerKernel);
      emit('rootfs', `firecracker kernel: ${firecrackerKernel}`);
      emit(
        'rootfs',
        `firecracker graceful stop: ${firecrackerGracefulStop.support} (${firecrackerGracefulStop.reason})`,
      );
    }
    await run('rootfs', [
      'mkfs.ext4',
      '-q',
      '-F',
      '-d',
      root,
      '-L',
      'rootfs',
      '-m',
      '0',
      rootfsPath,
      recipe.rootfsSize,
    ]);
    // The tree is no longer needed; free its space before the boot test.
    fs.rmSync(root, { recursive: true, force: true });
    emit('rootfs', 'hashing rootfs.ext4');
    const sha256 = await hashFile(rootfsPath, signal);
    const rootfsStat = fs.statSync(rootfsPath);
    const sizeBytes = rootfsStat.size;

    let bootTest: ImageManifest['bootTest'] = null;
    if (hasBoot) {
      begin('boot-test');
      const t0 = Date.now();
      const result = await options.bootTest!(
        { dir: staging, kernelPath, initrdPath, rootfsPath },
        loaded,
        (l) => emit('boot-test', l),
        signal,
      );
      bootTest = { seconds: (Date.now() - t0) / 1000, markers: result.markers };
      // The image must come out of its boot test untouched (the test boots an overlay of it).
      const after = fs.statSync(rootfsPath);
      if (after.mtimeMs !== rootfsStat.mtimeMs || after.size !== rootfsStat.size) {
        throw new FiredeckError('build_failed', 'step boot-test: the boot test changed the image it tested', {
          hint: 'boot tests must run on a clone or overlay of rootfs.ext4',
        });
      }
    }

    begin('publish');
    const manifest: ImageManifest = {
      name: recipe.name,
      version,
      recipeHash: loaded.hash,
      builderVersion: BUILDER_VERSION,
      suite: recipe.suite,
      builtAt: new Date().toISOString(),
      buildSeconds: Math.round((Date.now() - started) / 100) / 10,
      kernel: {
        release: kernel.release,
        package: kernel.package,
        packageVersion: kernel.packageVersion,
        file: 'vmlinuz',
        initrd: 'initrd.img',
        firecrackerKernel: firecrackerKernel === null ? null : FIRECRACKER_KERNEL_FILE,
        firecrackerGracefulStop,
      },
      rootfs: { file: 'rootfs.ext4', sizeBytes, sha256 },
      packages,
      npmGlobals: npmInstalled.globals,
      npmDependencies: npmInstalled.dependencies,
      readiness: recipe.readiness,
      bootTest,
    };
    fs.writeFileSync(path.join(staging, 'manifest.json'), `${JSON.stringify(manifest, null, 2)}\n`);
    fs.rmSync(path.join(staging, OWNER_FILE), { force: true });
    if (signal?.aborted) throw new FiredeckError('cancelled', 'image build cancelled before publishing');
    fs.renameSync(staging, finalDir);
    published = true;
    emit('publish', `published ${recipe.name} ${version} at ${finalDir}`, 100);
    return {
      dir: finalDir,
      kernelPath: path.join(finalDir, 'vmlinuz'),
      initrdPath: path.join(finalDir, 'initrd.img'),
      rootfsPath: path.join(finalDir, 'rootfs.ext4'),
      manifest,
    };
  } catch (err) {
    // A full disk is the operator's to fix, not a broken recipe: say where, and that nothing was published.
    throw (
      noSpaceError(
        err,
        `image ${recipe.name} ${version}`,
        options.outputParent,
        `old versions ('firedeckd image gc') and the build cache in ${cacheDir} give space back`,
      ) ?? err
    );
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
    if (!published) fs.rmSync(staging, { recursive: true, force: true });
  }
}

function timestamp(d: Date): string {
  return d
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d+Z$/, '');
}

function requireTools(recipe: Recipe): void {
  const tools = ['mmdebstrap', 'mkfs.ext4', 'tar', 'chroot', 'unshare'];
  // The npm step drops to its throw-away uid with setpriv (util-linux).
  if (recipe.npmGlobals.length > 0) tools.push('npm', 'setpriv');
  const dirs = ['/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin', '/sbin', '/bin'];
  for (const tool of tools) {
    if (!dirs.some((d) => fs.existsSync(path.join(d, tool)))) {
      throw new FiredeckError('unavailable', `image builds need ${tool}, which is not installed`, {
        hint: `apt-get install ${tool === 'mkfs.ext4' ? 'e2fsprogs' : tool === 'unshare' || tool === 'chroot' || tool === 'setpriv' ? 'util-linux coreutils' : tool}`,
      });
    }
  }
  if (process.getuid?.() !== 0) {
    throw new FiredeckError('permission_denied', 'image builds run as root (mmdebstrap, chroot)');
  }
}

const OWNER_FILE = '.firedeck-owner-pid';

/** A fresh dir holding the pid of its builder, so a later build can remove it if this process died. */
function makeOwnedDir(parent: string, prefix: string): string {
  const dir = fs.mkdtempSync(path.join(parent, prefix));
  fs.writeFileSync(path.join(dir, OWNER_FILE), String(process.pid));
  return dir;
}

function removeStaleWorkDirs(parent: string): void {
  for (const name of fs.readdirSync(parent)) {
    if (!name.startsWith('build-') && !name.startsWith('.staging-') && !name.startsWith('.layer-')) continue;
    const dir = path.join(parent, name);
    let pid = 0;
    try {
      pid = Number(fs.readFileSync(path.join(dir, OWNER_FILE), 'utf8'));
    } catch {
      // Without an owner file the dir was left by a crash between mkdtemp and writing it.
    }
    if (pid > 0 && pidAlive(pid)) continue;
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

type Runner = (argv: readonly string[]) => Promise<string>;

async function ensureBaseLayer(
  loaded: LoadedRecipe,
  cacheDir: string,
  run: Runner,
  log: (l: string) => void,
): Promise<string> {
  const { recipe } = loaded;
  const layer = baseLayerFile(cacheDir, loaded);
  if (fs.existsSync(layer)) {
    markLayerUsed(layer);
    log(`reusing base layer ${path.basename(layer)}`);
    return layer;
  }
  const uri = debianArchiveUri();
  log(
    `building base layer ${path.basename(layer)}: ${recipe.suite} ${recipe.variant} + ${recipe.packages.length} packages`,
  );
  const tmp = makeOwnedDir(layersDir(cacheDir), '.layer-');
  try {
    const out = path.join(tmp, 'base.tar');
    const argv = [
      'mmdebstrap',
      '--mode=root',
      `--variant=${recipe.variant}`,
      `--components=${recipe.components.join(',')}`,
      // mmdebstrap keeps services from starting inside the chroot by itself (its own policy-rc.d).
      `--include=${recipe.packages.join(',')}`,
    ];
    if (recipe.initramfsModules.length > 0) {
      // Written before the kernel is installed so that its initrd is built once, small.
      const modules = recipe.initramfsModules.join('\\n');
      argv.push(
        `--essential-hook=mkdir -p "$1/etc/initramfs-tools/conf.d" && printf "MODULES=list\\n" > "$1/etc/initramfs-tools/conf.d/firedeck.conf" && printf "${modules}\\n" >> "$1/etc/initramfs-tools/modules"`,
      );
    }
    argv.push(recipe.suite, out, uri);
    await run(argv);
    fs.renameSync(out, layer);
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
  return layer;
}

/** What the npm step installed, kept beside its layer so that a reused layer still tells the manifest. */
interface NpmInventory {
  globals: NpmInstalledPackage[];
  dependencies: NpmInstalledPackage[];
}

/**
 * npm globals are installed by the host's npm into the image's /usr/local (same architecture, same Node
 * major), so the image needs no npm of its own; the layer is the tar of /usr/local, owned by root. npm and the
 * packages' install scripts run as an unprivileged throw-away user in a sandbox (npmStep.ts), never as root.
 */
async function ensureNpmLayer(
  loaded: LoadedRecipe,
  cacheDir: string,
  work: string,
  signal: AbortSignal | undefined,
  run: Runner,
  log: (l: string) => void,
): Promise<{ tar: string; inventory: NpmInventory }> {
  const layer = npmLayerFile(cacheDir, loaded);
  const inventoryFile = npmInventoryFile(layer);
  if (fs.existsSync(layer) && fs.existsSync(inventoryFile)) {
    markLayerUsed(layer);
    log(`reusing npm layer ${path.basename(layer)}`);
    return { tar: layer, inventory: JSON.parse(fs.readFileSync(inventoryFile, 'utf8')) as NpmInventory };
  }
  const installed = await installNpmGlobals(loaded, cacheDir, work, signal, log);
  const inventory: NpmInventory = { globals: installed.globals, dependencies: installed.dependencies };
  const tmp = makeOwnedDir(layersDir(cacheDir), '.layer-');
  try {
    const out = path.join(tmp, 'npm.tar');
    await run(['tar', '-C', installed.root, '--numeric-owner', '--owner=0', '--group=0', '-cf', out, 'usr']);
    fs.writeFileSync(path.join(tmp, 'npm.json'), `${JSON.stringify(inventory, null, 2)}\n`);
    fs.renameSync(path.join(tmp, 'npm.json'), inventoryFile);
    fs.renameSync(out, layer);
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
  return { tar: layer, inventory };
}

/**
 * A shell command inside the image, in a private mount namespace with its own /proc and /dev so that nothing
 * stays mounted if the build dies.
 */
export function chrootArgv(root: string, script: string): string[] {
  return [
    'unshare',
    '--mount',
    '--propagation',
    'private',
    '--',
    '/bin/sh',
    '-c',
    'mount -t proc proc "$0/proc" && mount --rbind /dev "$0/dev" && exec chroot "$0" /usr/bin/env -i ' +
      `${CHROOT_PATH} HOME=/root LANG=C.UTF-8 /bin/sh -c "$1"`,
    root,
    script,
  ];
}

/** The recipe's users, files, symlinks, units and prunes, applied to the image tree at root. */
export async function applyFiles(
  loaded: LoadedRecipe,
  root: string,
  run: Runner,
  log: (l: string) => void,
): Promise<void> {
  const { recipe } = loaded;
  for (const user of recipe.users) {
    // "*" rather than a locked "!" password: sshd refuses key logins to locked accounts when PAM is off.
    await run(
      chrootArgv(
        root,
        `useradd -m -u ${user.uid} -U -s ${user.shell}${user.groups.length > 0 ? ` -G ${user.groups.join(',')}` : ''} ${user.name} && usermod -p '*' ${user.name}`,
      ),
    );
  }
  for (const f of recipe.files) {
    // Resolved as the guest sees it: Debian's /var/run -> /run must not lead to the host's /run.
    const dest = resolveInRoot(root, f.dest);
    fs.mkdirSync(path.dirname(dest), { recursive: true });
    assertInRoot(root, dest);
    fs.rmSync(dest, { force: true });
    fs.copyFileSync(recipeFilePath(loaded.dir, f.src), dest);
    fs.chmodSync(dest, parseInt(f.mode, 8));
    fs.chownSync(dest, 0, 0);
    log(`${f.dest} (${f.mode})`);
  }
  for (const link of recipe.symlinks) {
    const p = resolveInRoot(root, link.path);
    fs.mkdirSync(path.dirname(p), { recursive: true });
    assertInRoot(root, p);
    fs.rmSync(p, { force: true });
    fs.symlinkSync(link.target, p);
    log(`${link.path} -> ${link.target}`);
  }
  // The initrd was built with the kernel in the base layer; files that shape it (modules, udev link rules)
  // only take effect in a rebuilt one.
  const shapesInitrd = [...recipe.files.map((f) => f.dest), ...recipe.symlinks.map((l) => l.path)].some((p) =>
    /^\/(etc\/initramfs-tools|usr\/share\/initramfs-tools|etc\/systemd\/network|etc\/udev)\//.test(p),
  );
  if (shapesInitrd) {
    log('rebuilding the initrd (the recipe changes what goes into it)');
    await run(chrootArgv(root, 'update-initramfs -u -k all'));
  }
  if (recipe.systemdUnits.length > 0) {
    await run(chrootArgv(root, `systemctl enable ${recipe.systemdUnits.join(' ')}`));
  }
  // Identity is per VM: host keys are generated at first boot, machine-id by systemd on first boot.
  const sshDir = resolveInRoot(root, '/etc/ssh', { followLast: true });
  for (const name of fs.readdirSync(sshDir).filter((n) => n.startsWith('ssh_host_'))) {
    fs.rmSync(path.join(sshDir, name));
  }
  for (const idFile of ['/etc/machine-id', '/var/lib/dbus/machine-id']) {
    const p = resolveInRoot(root, idFile);
    if (fs.existsSync(p) && !fs.lstatSync(p).isSymbolicLink()) fs.writeFileSync(p, '');
  }
  for (const pattern of recipe.prune) {
    for (const p of expandGlob(root, pattern)) {
      assertInRoot(root, p);
      fs.rmSync(p, { recursive: true, force: true });
      log(`pruned ${path.relative(root, p)}`);
    }
  }
}

/**
 * Expands `*` path segments (no other globbing) inside the image at root, with directories resolved as the guest
 * sees them (resolveInRoot). Returns host paths of the matches themselves: a matching symlink is the link, never
 * its target, so deleting a match never deletes outside the image.
 */
export function expandGlob(root: string, pattern: string): string[] {
  // Guest paths of the directories matched so far, resolved (no symlink among their components).
  let current = ['/'];
  for (const segment of pattern.split('/').filter(Boolean)) {
    const next: string[] = [];
    for (const dir of current) {
      const hostDir = resolveInRoot(root, dir, { followLast: true });
      const matched: string[] = [];
      if (segment.includes('*')) {
        const re = new RegExp(`^${segment.split('*').map(escapeRegExp).join('.*')}$`);
        try {
          matched.push(...fs.readdirSync(hostDir).filter((n) => re.test(n)));
        } catch {
          continue;
        }
      } else if (lexists(path.join(hostDir, segment))) {
        matched.push(segment);
      }
      const guestDir = path.relative(root, hostDir);
      for (const name of matched) {
        const guest = `/${guestDir === '' ? name : `${guestDir}/${name}`}`;
        next.push(guest);
      }
    }
    current = next;
  }
  return current.filter((g) => g !== '/').map((g) => resolveInRoot(root, g));
}

function lexists(p: string): boolean {
  try {
    fs.lstatSync(p);
    return true;
  } catch {
    return false;
  }
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

// A PEM block starts on a line of its own; code that merely mentions the marker (PEM parsers in npm bundles)
// does not.
const PRIVATE_KEY_SCAN =
  "for d in /etc /root /home /opt /srv /usr/local /var/lib; do [ -d $d ] && grep -rlIE -- '^-----BEGIN ([A-Z0-9]+ )*PRIVATE KEY-----[[:space:]]*$' $d; done; true";

async function runChecks(
  recipe: Recipe,
  root: string,
  run: (argv: readonly string[], capture: boolean) => Promise<string>,
  log: (l: string) => void,
): Promise<void> {
  const failures: string[] = [];
  const hostKeys = fs
    .readdirSync(resolveInRoot(root, '/etc/ssh', { followLast: true }))
    .filter((n) => n.startsWith('ssh_host_'));
  if (hostKeys.length > 0) failures.push(`SSH host keys baked into the image: ${hostKeys.join(', ')}`);
  const keys = (await run(chrootArgv(root, PRIVATE_KEY_SCAN), true)).trim();
  if (keys !== '') failures.push(`private keys present in the image: ${keys.split('\n').join(', ')}`);
  else log('check no private keys: ok');

  for (const check of recipe.checks) {
    let output: string;
    try {
      output = await run(chrootArgv(root, `${check.run} 2>&1`), true);
    } catch (err) {
      const e = FiredeckError.from(err);
      if (e.kind === 'cancelled') throw e;
      const tail = (e.details?.tail as string[] | undefined)?.slice(-10).join('\n') ?? e.message;
      failures.push(`check "${check.name}" failed (\`${check.run}\`):\n${tail}`);
      continue;
    }
    if (check.expect !== undefined && !new RegExp(check.expect, 'm').test(output)) {
      failures.push(
        `check "${check.name}": output does not match /${check.expect}/:\n${output.trim().split('\n').slice(-10).join('\n')}`,
      );
      continue;
    }
    log(`check ${check.name}: ok`);
  }
  if (failures.length > 0) {
    throw new FiredeckError('build_failed', `step checks: ${failures.length} check(s) failed\n${failures.join('\n')}`, {
      details: { step: 'checks', failures },
    });
  }
}

function parsePackages(text: string): ImagePackage[] {
  return text
    .split('\n')
    .filter(Boolean)
    .map((line) => {
      const [name = '', version = ''] = line.split('\t');
      return { name, version };
    })
    .sort((a, b) => a.name.localeCompare(b.name));
}

/** The one kernel in the image's /boot and its initrd, both read inside the image. */
export function findKernel(
  root: string,
  packages: ImagePackage[],
): { vmlinuz: string; initrd: string; release: string; package: string; packageVersion: string } {
  const boot = resolveInRoot(root, '/boot', { followLast: true });
  const kernels = fs.readdirSync(boot).filter((n) => n.startsWith('vmlinuz-'));
  if (kernels.length !== 1) {
    throw new FiredeckError(
      'build_failed',
      `step checks: expected one kernel in /boot, found ${kernels.length}: ${kernels.join(', ')}`,
      {
        details: { step: 'checks' },
      },
    );
  }
  const release = kernels[0]!.slice('vmlinuz-'.length);
  // Read as the guest's boot loader would: a link in /boot must not lead to the host's kernel.
  const initrd = resolveInRoot(root, `/boot/initrd.img-${release}`, { followLast: true });
  if (!fs.existsSync(initrd)) {
    throw new FiredeckError('build_failed', `step checks: no initrd for kernel ${release} in /boot`, {
      hint: 'the recipe needs initramfs-tools (pulled in by linux-image-amd64)',
      details: { step: 'checks' },
    });
  }
  const pkgName = `linux-image-${release}`;
  const pkg = packages.find((p) => p.name === pkgName);
  return {
    vmlinuz: resolveInRoot(root, `/boot/${kernels[0]!}`, { followLast: true }),
    initrd,
    release,
    package: pkgName,
    packageVersion: pkg?.version ?? 'unknown',
  };
}

/** sha256 of a file, reading it as a stream (sparse holes read as zeros). */
export function hashFile(file: string, signal?: AbortSignal): Promise<string> {
  return new Promise((resolve, reject) => {
    const hash = crypto.createHash('sha256');
    const stream = fs.createReadStream(file, { highWaterMark: 1 << 20, signal });
    stream.on('data', (chunk) => hash.update(chunk));
    stream.once('error', reject);
    stream.once('end', () => resolve(hash.digest('hex')));
  });
}
