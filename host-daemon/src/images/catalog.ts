/**
 * The catalog of published golden images on this host.
 *
 * Layout (everything under the daemon's state dir):
 *
 *   ${stateDir}/images/<name>/<version>/rootfs.ext4    ext4 root filesystem (sparse), never written after publish
 *   ${stateDir}/images/<name>/<version>/vmlinuz        the image's own kernel (bzImage, for QEMU)
 *   ${stateDir}/images/<name>/<version>/initrd.img     its initrd
 *   ${stateDir}/images/<name>/<version>/manifest.json  ImageManifest (src/shared/protocol/image.ts)
 *   ${stateDir}/images/<name>/current                  relative symlink to <version>, replaced atomically
 *   ${stateDir}/images/<name>/.staging-*               a build in progress (never resolved, removed on failure)
 *
 * Stable API for the VM lifecycle:
 *
 *   const catalog = new ImageCatalog(stateDir);
 *   const img = catalog.resolve('test');            // current version; or 'test@<version>'
 *   img.kernelPath, img.initrdPath, img.rootfsPath  // absolute paths; clone rootfsPath with
 *                                                   //   cp --reflink=auto --sparse=always (never write it)
 *   img.manifest.readiness                          // markers the guest prints, e.g. ['vm', 'sshd']
 *
 * `resolve` throws FiredeckError `not_found` when the image or version does not exist. Versions are
 * immutable: a VM may keep the version it was created from (store `img.version`) and resolve `name@version`
 * later; `gc` never removes the current version nor those passed as in use.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { FiredeckError } from '../../../src/shared/errors';
import { ImageManifest, ImageRef, type GoldenImageVersion } from '../../../src/shared/protocol/image';

/** A published image version resolved to its files. */
export interface ResolvedImage {
  name: string;
  version: string;
  dir: string;
  kernelPath: string;
  initrdPath: string;
  rootfsPath: string;
  /** The uncompressed kernel Firecracker boots, when the image was built with one. */
  firecrackerKernelPath: string | null;
  manifest: ImageManifest;
}

const CURRENT = 'current';

export class ImageCatalog {
  readonly root: string;

  constructor(stateDir: string) {
    this.root = path.join(stateDir, 'images');
  }

  /** Where builds for `name` stage and publish their versions (the builder's `outputParent`). */
  imageDir(name: string): string {
    return path.join(this.root, checkName(name));
  }

  /** `name` → its current version; `name@version` → that version. */
  resolve(ref: string): ResolvedImage {
    if (!ImageRef.safeParse(ref).success) {
      throw new FiredeckError('invalid_params', `not an image reference: ${JSON.stringify(ref)}`, {
        hint: 'use <name> or <name>@<version>',
      });
    }
    const [name, pinned] = ref.split('@') as [string, string | undefined];
    const version = pinned ?? this.currentVersion(name);
    if (version === null) {
      throw new FiredeckError('not_found', `image ${name} has no current version`, {
        hint: `build it with: firedeckd image build ${name}`,
      });
    }
    return this.load(name, version);
  }

  /** The current version of `name`, or null when there is none. */
  currentVersion(name: string): string | null {
    try {
      return fs.readlinkSync(path.join(this.imageDir(name), CURRENT));
    } catch {
      return null;
    }
  }

  /** Image names with at least one published version. */
  names(): string[] {
    let entries: string[];
    try {
      entries = fs.readdirSync(this.root);
    } catch {
      return [];
    }
    return entries.filter((n) => /^[a-z][a-z0-9-]{0,31}$/.test(n) && this.versions(n).length > 0).sort();
  }

  /** Published versions of `name`, oldest first (by build time). */
  versions(name: string): ImageManifest[] {
    const dir = this.imageDir(name);
    let entries: string[];
    try {
      entries = fs.readdirSync(dir);
    } catch {
      return [];
    }
    const manifests: ImageManifest[] = [];
    for (const entry of entries) {
      if (entry.startsWith('.') || entry === CURRENT) continue;
      const manifest = readManifest(path.join(dir, entry));
      if (manifest !== null && manifest.version === entry) manifests.push(manifest);
    }
    return manifests.sort((a, b) => a.builtAt.localeCompare(b.builtAt) || a.version.localeCompare(b.version));
  }

  list(name?: string): GoldenImageVersion[] {
    const names = name === undefined ? this.names() : [checkName(name)];
    const result: GoldenImageVersion[] = [];
    for (const n of names) {
      const current = this.currentVersion(n);
      for (const m of this.versions(n)) {
        result.push({
          name: n,
          version: m.version,
          current: m.version === current,
          builtAt: m.builtAt,
          recipeHash: m.recipeHash,
          kernelRelease: m.kernel.release,
          rootfsBytes: m.rootfs.sizeBytes,
          diskBytes: diskUsage(path.join(this.imageDir(n), m.version)),
          rootfsSha256: m.rootfs.sha256,
          packages: m.packages,
          npmGlobals: m.npmGlobals,
          bootTest: m.bootTest,
          pinnedBy: [],
        });
      }
    }
    return result;
  }

  /** The published version of `name` built from exactly this recipe hash, if any (newest). */
  findByRecipeHash(name: string, recipeHash: string): ImageManifest | null {
    const matches = this.versions(name).filter((m) => m.recipeHash === recipeHash);
    return matches.at(-1) ?? null;
  }

  /** Makes `version` current by replacing the `current` symlink in one rename. */
  promote(name: string, version: string): ResolvedImage {
    const image = this.load(name, version);
    const dir = this.imageDir(name);
    const tmp = path.join(dir, `.current-${process.pid}-${Date.now()}`);
    fs.symlinkSync(version, tmp);
    fs.renameSync(tmp, path.join(dir, CURRENT));
    return image;
  }

  /** Makes the version published before the current one current again. */
  rollback(name: string): ResolvedImage {
    const current = this.currentVersion(name);
    const versions = this.versions(name);
    const index = versions.findIndex((m) => m.version === current);
    if (current === null || index <= 0) {
      throw new FiredeckError(
        'invalid_state',
        `image ${name} has no version older than ${current ?? '(none)'} to roll back to`,
      );
    }
    return this.promote(name, versions[index - 1]!.version);
  }

  /**
   * Removes old versions: keeps the current one, the `keep` newest others, and every version in `inUse`
   * (`name@version` refs of VMs whose disks still depend on them, e.g. qcow2 overlays). With `dryRun` it only
   * says what it would remove and free now.
   */
  gc(options: { name?: string; keep?: number; inUse?: ReadonlySet<string>; dryRun?: boolean } = {}): {
    removed: string[];
    freedBytes: number;
  } {
    const keep = options.keep ?? 2;
    const removed: string[] = [];
    let freedBytes = 0;
    const names = options.name === undefined ? this.names() : [checkName(options.name)];
    for (const name of names) {
      const current = this.currentVersion(name);
      const others = this.versions(name).filter((m) => m.version !== current);
      const doomed = others.slice(0, Math.max(0, others.length - keep));
      for (const m of doomed) {
        const ref = `${name}@${m.version}`;
        if (options.inUse?.has(ref)) continue;
        const dir = path.join(this.imageDir(name), m.version);
        freedBytes += diskUsage(dir);
        removed.push(ref);
        if (options.dryRun === true) continue;
        // Rename first so a half-removed version is never resolvable.
        const trash = path.join(this.imageDir(name), `.trash-${m.version}`);
        fs.renameSync(dir, trash);
        fs.rmSync(trash, { recursive: true, force: true });
      }
    }
    return { removed, freedBytes };
  }

  /**
   * Copies a built image dir (e.g. the test rig's cached build) into the catalog as `version`, sparse and
   * reflinked where the filesystem allows, then optionally makes it current.
   */
  async importVersion(name: string, srcDir: string, options: { promote?: boolean } = {}): Promise<ResolvedImage> {
    const manifest = readManifest(srcDir);
    if (manifest === null) throw new FiredeckError('not_found', `no valid manifest.json in ${srcDir}`);
    const dir = this.imageDir(name);
    fs.mkdirSync(dir, { recursive: true });
    const final = path.join(dir, manifest.version);
    if (!fs.existsSync(final)) {
      const staging = fs.mkdtempSync(path.join(dir, `.staging-${manifest.version}-`));
      try {
        for (const file of ['rootfs.ext4', 'vmlinuz', 'initrd.img', 'manifest.json']) {
          await copySparse(path.join(srcDir, file), path.join(staging, file));
        }
        fs.renameSync(staging, final);
      } catch (err) {
        fs.rmSync(staging, { recursive: true, force: true });
        throw err;
      }
    }
    return options.promote === false ? this.load(name, manifest.version) : this.promote(name, manifest.version);
  }

  private load(name: string, version: string): ResolvedImage {
    const dir = path.join(this.imageDir(name), version);
    if (version.includes('/') || version.startsWith('.')) {
      throw new FiredeckError('invalid_params', `not an image version: ${JSON.stringify(version)}`);
    }
    const manifest = readManifest(dir);
    if (manifest === null) {
      throw new FiredeckError('not_found', `image ${name}@${version} is not in the catalog`, {
        hint: 'list the versions with: firedeckd image list',
      });
    }
    return {
      name,
      version,
      dir,
      kernelPath: path.join(dir, manifest.kernel.file),
      initrdPath: path.join(dir, manifest.kernel.initrd),
      rootfsPath: path.join(dir, manifest.rootfs.file),
      firecrackerKernelPath:
        manifest.kernel.firecrackerKernel === null ? null : path.join(dir, manifest.kernel.firecrackerKernel),
      manifest,
    };
  }
}

function checkName(name: string): string {
  if (!/^[a-z][a-z0-9-]{0,31}$/.test(name)) {
    throw new FiredeckError('invalid_params', `not an image name: ${JSON.stringify(name)}`);
  }
  return name;
}

/** The manifest of a version dir, or null when it is missing or invalid (a version is only what validates). */
export function readManifest(dir: string): ImageManifest | null {
  try {
    const parsed = ImageManifest.safeParse(JSON.parse(fs.readFileSync(path.join(dir, 'manifest.json'), 'utf8')));
    return parsed.success ? parsed.data : null;
  } catch {
    return null;
  }
}

function diskUsage(dir: string): number {
  let total = 0;
  let entries: fs.Dirent[];
  try {
    entries = fs.readdirSync(dir, { withFileTypes: true });
  } catch {
    return 0;
  }
  for (const e of entries) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) total += diskUsage(p);
    else if (e.isFile()) total += fs.statSync(p).blocks * 512;
  }
  return total;
}

/** `cp --reflink=auto --sparse=always`: instant on XFS/btrfs, sparse elsewhere; never a full copy. */
export function copySparse(src: string, dest: string): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile('cp', ['--reflink=auto', '--sparse=always', src, dest], (err, _stdout, stderr) => {
      if (err) reject(new FiredeckError('internal', `cp ${src} ${dest}: ${stderr.trim() || err.message}`));
      else resolve();
    });
  });
}
