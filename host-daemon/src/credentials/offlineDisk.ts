import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { FiredeckError } from '../../../src/shared/errors';
import { pidAlive, procStatFields } from '../system/processes';
import {
  catPath,
  checkFilesystem,
  DEFAULT_E2FS_TOOLS,
  EXT_INCOMPAT_JOURNAL_DEV,
  EXT_INCOMPAT_RECOVER,
  EXT_STATE_ERROR,
  EXT_STATE_VALID,
  readImageFormat,
  runTool,
  statPaths,
  stderrLines,
  toolFailed,
  type E2fsTools,
  type InodeInfo,
  type Superblock,
} from './e2fsTools';
import { fsyncPath, writeFileDurably } from './durable';
import { assertImageUnused } from './imageHolders';
import { Secret } from './secret';
import { parseUndoLog, replayUndoLog } from './undoLog';

/** A file to put into a stopped VM's root filesystem. */
export interface GuestFile {
  /** Absolute path inside the guest, e.g. `/home/firedeck/.codex/auth.json`. */
  path: string;
  /** The new content, or a merge of the current one (null when absent), e.g. for `~/.claude.json`. */
  content: Secret | ((current: Secret | null) => Secret);
  uid: number;
  gid: number;
  /** Permission bits, owner-only (default 0o600). */
  mode?: number;
}

export interface OfflineWriteRequest {
  /** The VM's root disk: a raw ext2/3/4 image file. */
  image: string;
  files: readonly GuestFile[];
  /** Mode of parent directories that are created (default 0o700); they get the file's owner. */
  dirMode?: number;
  /**
   * The daemon's word that the VM using this image is stopped, and stays stopped while this runs (hold the VM's
   * lock). Asked before anything is read and again right before the image is written.
   */
  vmStopped: () => boolean | Promise<boolean>;
}

export interface OfflineWriteResult {
  files: { path: string; sha256: string; size: number; replaced: boolean }[];
  createdDirs: string[];
  /** What was found of an earlier, interrupted write on this image (and done about it) before this one. */
  recovery: RecoveryOutcome;
}

/**
 * clean: nothing was pending; rolled-back: an interrupted write was undone, the image is byte for byte as before
 * it; finished: the interrupted write had committed, only its bookkeeping was left; nothing-applied: it died
 * before writing anything to the image.
 */
export type RecoveryOutcome = 'clean' | 'rolled-back' | 'finished' | 'nothing-applied';

/** Points a write passes (tests fail or die at each). */
export type OfflineWritePhase = 'checked' | 'intent' | 'debugfs' | 'applied' | 'verified' | 'committed';

export interface OfflineDiskWriterOptions {
  /**
   * A directory of the daemon's run dir (a tmpfs on real hosts) where plaintext is staged for debugfs, as unnamed
   * files (O_TMPFILE, mode 0600; the directory is 0700) that debugfs reads through /proc/self/fd.
   */
  stagingDir: string;
  log?: (line: string) => void;
  tools?: E2fsTools;
  onPhase?: (phase: OfflineWritePhase) => void | Promise<void>;
}

/** Per image (its real path): the tail of the operations queued on it in this process. */
const imageLocks = new Map<string, Promise<void>>();
const COMPONENT = /^[A-Za-z0-9._@+-]{1,200}$/;
const MAX_FILES = 16;
const MAX_CONTENT = 4 * 1024 * 1024;
const TOOL_TIMEOUT_MS = 10 * 60_000;

interface Intent {
  version: 1;
  pid: number;
  /** The process's start time (/proc/<pid>/stat field 22), so a reused pid is not taken for the writer. */
  started: string;
  guard: Pick<Superblock, 'uuid' | 'mountCount' | 'mountTime' | 'lastCheck'>;
  files: { path: string; sha256: string }[];
  at: string;
}

interface PlannedFile {
  path: string;
  temp: string;
  content: Secret;
  uid: number;
  gid: number;
  mode: number;
  replaced: boolean;
}

/**
 * Writes files into a stopped VM's ext4 root disk without mounting it, with debugfs, all or nothing.
 *
 * How a write stays atomic (the old files or the new ones, never a part, whatever moment the daemon dies):
 *  1. Checks: the image is a raw ext image, cleanly unmounted, fsck-clean; the VM is stopped and no process or loop
 *     device holds the image; no path component is a symlink or not a directory. An interrupted earlier write is
 *     recovered first (below).
 *  2. An intent file goes into `.<image>.offline-write/` beside the image (the superblock's mount count and times,
 *     the new files' hashes), durably.
 *  3. One `debugfs -w -z <undo>` run: missing parents made (mode, owner), each file written under a temporary
 *     name, given mode and owner, the old one removed, the temporary linked to the target name and unlinked. debugfs
 *     has no rename, and it buffers writes, so a kill in the middle of its run can leave the filesystem
 *     inconsistent, not only a temporary entry: the undo file (the old content of every block it touches, recorded
 *     before each write; see undoLog.ts) is what makes the run atomic.
 *  4. Verification: every target is a regular file with the mode, owner and size wanted, its sha256 read back with
 *     `debugfs cat` matches, no temporary name is left, `e2fsck -fn` exits 0.
 *  5. Commit: the undo file is unlinked (the commit point), then the intent directory.
 * Recovery, before any read or write of the image and by `recover()`: an undo file means the write did not commit,
 * so it is replayed and the image is exactly as before; no undo file means it committed or never began. A
 * replay is refused if the image was mounted or checked meanwhile (the superblock's mount count or times moved):
 * the daemon must recover an image before it boots a VM from it (`hasPendingWrite`).
 */
export class OfflineDiskWriter {
  private readonly stagingDir: string;
  private readonly log: (line: string) => void;
  private readonly tools: E2fsTools;
  private readonly onPhase: (phase: OfflineWritePhase) => void | Promise<void>;

  constructor(options: OfflineDiskWriterOptions) {
    this.stagingDir = options.stagingDir;
    this.log = options.log ?? (() => undefined);
    this.tools = options.tools ?? DEFAULT_E2FS_TOOLS;
    this.onPhase = options.onPhase ?? (() => undefined);
  }

  /** Whether an interrupted write left state beside the image (then `recover` it before booting from it). */
  static hasPendingWrite(image: string): boolean {
    return fs.existsSync(stateDirOf(path.resolve(image)));
  }

  /** Reads a file of the guest (e.g. a companion JSON to merge); null when it does not exist. */
  async read(
    image: string,
    guestPath: string,
    options: { vmStopped: () => boolean | Promise<boolean> },
  ): Promise<Secret | null> {
    const parts = parseGuestPath(guestPath);
    return this.locked(image, async (img) => {
      await this.assertStopped(img, options.vmStopped);
      await this.recoverLocked(img);
      assertWritableFormat(img);
      const inspected = await this.inspect(img, [parts]);
      const info = inspected.targets.get(guestPath) ?? null;
      return info === null ? null : Secret.adopt(await catPath(this.tools, img, guestPath));
    });
  }

  async write(request: OfflineWriteRequest): Promise<OfflineWriteResult> {
    const files = validateFiles(request);
    const dirMode = request.dirMode ?? 0o700;
    if (!Number.isInteger(dirMode) || (dirMode & ~0o700) !== 0 || (dirMode & 0o700) !== 0o700) {
      throw new FiredeckError('invalid_params', 'dirMode must be owner-only with rwx for the owner (e.g. 0o700)');
    }
    return this.locked(request.image, async (img) => {
      await this.assertStopped(img, request.vmStopped);
      const recovery = await this.recoverLocked(img);
      const superblock = assertWritableFormat(img);
      const fsck = await checkFilesystem(this.tools, img);
      if (!fsck.clean) {
        throw new FiredeckError('invalid_state', `The filesystem in ${img} has errors already; nothing was written`, {
          hint: 'Start and stop the VM cleanly, or repair the image with `e2fsck -fy` while the VM is stopped.',
          details: { fsck: fsck.output.split('\n').slice(-10) },
        });
      }
      const inspected = await this.inspect(
        img,
        files.map((f) => f.parts),
      );
      const planned: PlannedFile[] = [];
      for (const f of files) {
        const current = inspected.targets.get(f.path) ?? null;
        let content: Secret;
        if (typeof f.content === 'function') {
          const old = current === null ? null : Secret.adopt(await catPath(this.tools, img, f.path));
          content = f.content(old);
          if (old !== null && content !== old) old.wipe();
        } else {
          content = f.content;
        }
        if (content.size > MAX_CONTENT) {
          throw new FiredeckError('invalid_params', `The content for ${f.path} is larger than 4 MiB`);
        }
        const base = path.posix.basename(f.path);
        const temp = path.posix.join(path.posix.dirname(f.path), `.${base}.fdw-${randomBytes(4).toString('hex')}`);
        planned.push({ path: f.path, temp, content, uid: f.uid, gid: f.gid, mode: f.mode, replaced: current !== null });
      }
      const createdDirs = inspected.missingDirs.map((d) => ({ path: d, ...ownerOf(files, d) }));
      const script = commandScript(planned, createdDirs, dirMode);
      await this.onPhase('checked');

      const state = stateDirOf(img);
      fs.mkdirSync(state, { mode: 0o700 });
      const intent: Intent = {
        version: 1,
        pid: process.pid,
        started: processStart(process.pid) ?? '',
        guard: pickGuard(superblock),
        files: planned.map((p) => ({ path: p.path, sha256: p.content.sha256() })),
        at: new Date().toISOString(),
      };
      writeFileDurably(path.join(state, 'intent.json'), JSON.stringify(intent));
      let committed = false;
      const fds: number[] = [];
      try {
        await this.onPhase('intent');
        for (const p of planned) fds.push(this.stage(p.content.bytes()));
        fds.push(this.stage(Buffer.from(script)));
        await this.assertStopped(img, request.vmStopped);
        await this.onPhase('debugfs');
        const undo = path.join(state, 'undo');
        const r = await runTool(
          this.tools.debugfs,
          ['-w', '-z', undo, '-f', `/proc/self/fd/${3 + planned.length}`, img],
          { fds, timeoutMs: TOOL_TIMEOUT_MS },
        );
        fsyncPath(img);
        if (r.code !== 0 || stderrLines(r.stderr).length > 0) throw toolFailed('debugfs -w', img, r);
        await this.onPhase('applied');
        await this.verify(img, planned, createdDirs, dirMode);
        await this.onPhase('verified');
        fs.rmSync(undo);
        fsyncPath(state);
        committed = true;
        await this.onPhase('committed');
      } catch (err) {
        if (!committed) {
          const outcome = await this.rollBack(img);
          this.log(`offline write to ${img}: failed (${errorMessage(err)}); ${outcome}`);
        }
        throw err instanceof FiredeckError ? err : FiredeckError.from(err);
      } finally {
        for (const fd of fds) fs.closeSync(fd);
      }
      removeState(img);
      const result: OfflineWriteResult = {
        files: planned.map((p) => ({
          path: p.path,
          sha256: p.content.sha256(),
          size: p.content.size,
          replaced: p.replaced,
        })),
        createdDirs: createdDirs.map((d) => d.path),
        recovery,
      };
      this.log(
        `offline write to ${img}: ${result.files.map((f) => `${f.path} (${f.size} bytes, sha256 ${f.sha256})`).join(', ')}`,
      );
      return result;
    });
  }

  /**
   * Settles an interrupted write on this image (see the class comment). Needs the same guarantees as a write:
   * the VM stopped, nothing holding the image.
   */
  async recover(image: string, options: { vmStopped: () => boolean | Promise<boolean> }): Promise<RecoveryOutcome> {
    return this.locked(image, async (img) => {
      await this.assertStopped(img, options.vmStopped);
      return this.recoverLocked(img);
    });
  }

  private async recoverLocked(img: string): Promise<RecoveryOutcome> {
    const state = stateDirOf(img);
    if (!fs.existsSync(state)) return 'clean';
    const intent = readIntent(state);
    if (intent !== null && intent.pid !== process.pid && processStart(intent.pid) === intent.started) {
      throw new FiredeckError('conflict', `An offline write to ${img} is in progress in pid ${intent.pid}`, {
        hint: 'Wait for it to finish.',
      });
    }
    const undo = path.join(state, 'undo');
    let outcome: RecoveryOutcome;
    if (fs.existsSync(undo)) {
      const log = parseUndoLog(undo);
      if (log.blocks.length > 0) {
        const format = readImageFormat(img);
        const guard = intent?.guard;
        if (format.kind !== 'ext' || guard === undefined || !sameGuard(pickGuard(format.superblock), guard)) {
          throw new FiredeckError('integrity', `${img} changed after an interrupted offline write; it was not undone`, {
            hint:
              'The image was mounted or checked (a VM booted from it?) before its interrupted write was recovered. ' +
              `Check it with \`e2fsck -fn\`, then remove ${state}.`,
          });
        }
        replayUndoLog(log, img);
        outcome = 'rolled-back';
        const fsck = await checkFilesystem(this.tools, img);
        if (!fsck.clean) {
          throw new FiredeckError('integrity', `${img} fails e2fsck after undoing an interrupted offline write`, {
            hint: `Repair it with \`e2fsck -fy\` while the VM is stopped, then remove ${state}.`,
            details: { fsck: fsck.output.split('\n').slice(-10) },
          });
        }
      } else {
        outcome = 'nothing-applied';
      }
    } else {
      outcome = intent !== null && (await this.holdsAll(img, intent)) ? 'finished' : 'nothing-applied';
    }
    removeState(img);
    this.log(`offline write to ${img}: recovered an interrupted write (${outcome})`);
    return outcome;
  }

  private async rollBack(img: string): Promise<string> {
    try {
      const outcome = await this.recoverLocked(img);
      return `recovered (${outcome})`;
    } catch (err) {
      return `NOT recovered, left for the next attempt: ${errorMessage(err)}`;
    }
  }

  private async holdsAll(img: string, intent: Intent): Promise<boolean> {
    try {
      const found = await statPaths(
        this.tools,
        img,
        intent.files.map((f) => f.path),
        (t) => this.stage(Buffer.from(t)),
      );
      for (const f of intent.files) {
        if ((found.get(f.path) ?? null) === null) return false;
        if (Secret.adopt(await catPath(this.tools, img, f.path)).sha256() !== f.sha256) return false;
      }
      return true;
    } catch {
      return false;
    }
  }

  private async assertStopped(img: string, vmStopped: () => boolean | Promise<boolean>): Promise<void> {
    if (!(await vmStopped())) {
      throw new FiredeckError('invalid_state', `The VM using ${img} is not stopped`, {
        hint: 'Stop the VM first, or write into the running VM over its sshd (the online path).',
      });
    }
    assertImageUnused(img);
  }

  /** Stats every component of every path; refuses symlinks and non-directories on the way. */
  private async inspect(
    img: string,
    targets: readonly string[][],
  ): Promise<{ targets: Map<string, InodeInfo | null>; missingDirs: string[] }> {
    const prefixes = new Set<string>();
    for (const parts of targets)
      for (let i = 1; i <= parts.length; i++) prefixes.add(`/${parts.slice(0, i).join('/')}`);
    const found = await statPaths(this.tools, img, [...prefixes], (t) => this.stage(Buffer.from(t)));
    const result = new Map<string, InodeInfo | null>();
    const missing = new Set<string>();
    for (const parts of targets) {
      const full = `/${parts.join('/')}`;
      let absent = false;
      for (let i = 1; i <= parts.length; i++) {
        const p = `/${parts.slice(0, i).join('/')}`;
        const info = absent ? null : (found.get(p) ?? null);
        const last = i === parts.length;
        if (info === null) {
          absent = true;
          if (!last) missing.add(p);
          continue;
        }
        if (info.type === 'symlink') {
          throw new FiredeckError('permission_denied', `${p} in the image is a symlink; Firedeck does not follow it`, {
            hint: 'Remove the link inside the VM (or write over sshd with the VM running).',
          });
        }
        if (!last && info.type !== 'directory') {
          throw new FiredeckError('invalid_state', `${p} in the image is not a directory`);
        }
        if (last && info.type !== 'regular') {
          throw new FiredeckError('invalid_state', `${full} in the image is not a regular file`);
        }
      }
      result.set(full, absent ? null : (found.get(full) ?? null));
    }
    return { targets: result, missingDirs: [...missing].sort((a, b) => a.length - b.length) };
  }

  private async verify(
    img: string,
    planned: readonly PlannedFile[],
    dirs: readonly { path: string; uid: number; gid: number }[],
    dirMode: number,
  ): Promise<void> {
    const paths = [...planned.flatMap((p) => [p.path, p.temp]), ...dirs.map((d) => d.path)];
    const found = await statPaths(this.tools, img, paths, (t) => this.stage(Buffer.from(t)));
    const wrong = (what: string): FiredeckError =>
      new FiredeckError('internal', `Offline write to ${img}: ${what} after debugfs ran; it was undone`);
    for (const p of planned) {
      const info = found.get(p.path) ?? null;
      if (info === null) throw wrong(`${p.path} is missing`);
      if (info.type !== 'regular' || info.mode !== p.mode || info.uid !== p.uid || info.gid !== p.gid) {
        throw wrong(`${p.path} has type ${info.type}, mode ${info.mode.toString(8)}, owner ${info.uid}:${info.gid}`);
      }
      if (info.size !== p.content.size || info.links !== 1) throw wrong(`${p.path} has the wrong size or link count`);
      if ((found.get(p.temp) ?? null) !== null) throw wrong(`the temporary ${p.temp} is left`);
      const back = Secret.adopt(await catPath(this.tools, img, p.path));
      const same = back.sha256() === p.content.sha256();
      back.wipe();
      if (!same) throw wrong(`${p.path} reads back with another sha256`);
    }
    for (const d of dirs) {
      const info = found.get(d.path) ?? null;
      if (
        info === null ||
        info.type !== 'directory' ||
        info.mode !== dirMode ||
        info.uid !== d.uid ||
        info.gid !== d.gid
      ) {
        throw wrong(`the directory ${d.path} is not as created`);
      }
    }
    const fsck = await checkFilesystem(this.tools, img);
    if (!fsck.clean) throw wrong(`e2fsck -fn fails (${fsck.output.split('\n').slice(-3).join('; ')})`);
  }

  /**
   * Plaintext for debugfs as an unnamed file (O_TMPFILE) in the 0700 staging dir: debugfs reads it as
   * /proc/self/fd/N, and nothing of it outlives the descriptor, even if the daemon is killed.
   */
  private stage(bytes: Buffer): number {
    fs.mkdirSync(this.stagingDir, { recursive: true, mode: 0o700 });
    const st = fs.lstatSync(this.stagingDir);
    if (!st.isDirectory()) throw new FiredeckError('invalid_state', `${this.stagingDir} is not a directory`);
    if ((st.mode & 0o077) !== 0) fs.chmodSync(this.stagingDir, 0o700);
    let fd: number;
    try {
      fd = fs.openSync(this.stagingDir, O_TMPFILE | fs.constants.O_RDWR, 0o600);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== 'EOPNOTSUPP' && code !== 'EISDIR' && code !== 'EINVAL') throw err;
      throw new FiredeckError(
        'unavailable',
        `The filesystem of ${this.stagingDir} cannot hold unnamed files (O_TMPFILE)`,
        {
          hint: 'Put the daemon’s run dir on tmpfs (as /run is), ext4, xfs or btrfs.',
        },
      );
    }
    try {
      let done = 0;
      while (done < bytes.byteLength) done += fs.writeSync(fd, bytes, done, bytes.byteLength - done);
      return fd;
    } catch (err) {
      fs.closeSync(fd);
      throw err;
    }
  }

  /**
   * One operation at a time per image in this process, whichever writer instance runs it (the daemon is the only
   * writer on its host; another process's write in progress is seen by its intent's live pid, or holds the image).
   */
  private async locked<T>(image: string, fn: (img: string) => Promise<T>): Promise<T> {
    const img = resolveImage(image);
    const previous = imageLocks.get(img) ?? Promise.resolve();
    let release!: () => void;
    const mine = new Promise<void>((r) => (release = r));
    const chained = previous.then(() => mine);
    imageLocks.set(img, chained);
    await previous;
    try {
      return await fn(img);
    } finally {
      release();
      if (imageLocks.get(img) === chained) imageLocks.delete(img);
    }
  }
}

/** O_TMPFILE (__O_TMPFILE | O_DIRECTORY on Linux): Node passes the flags through to open(2). */
const O_TMPFILE = 0o20000000 | 0o200000;

function resolveImage(image: string): string {
  if (typeof image !== 'string' || !path.isAbsolute(image)) {
    throw new FiredeckError('invalid_params', 'The disk image must be given as an absolute host path');
  }
  let real: string;
  try {
    real = fs.realpathSync(image);
  } catch {
    throw new FiredeckError('not_found', `No disk image at ${image}`);
  }
  if (!fs.statSync(real).isFile()) throw new FiredeckError('invalid_params', `${image} is not a disk image file`);
  return real;
}

function stateDirOf(img: string): string {
  return path.join(path.dirname(img), `.${path.basename(img)}.offline-write`);
}

function assertWritableFormat(img: string): Superblock {
  const format = readImageFormat(img);
  if (format.kind === 'qcow2') {
    throw new FiredeckError('invalid_state', `${img} is a qcow2 overlay; debugfs writes only raw ext images`, {
      hint: 'Start the VM and write the credential over its sshd (the online path).',
    });
  }
  if (format.kind !== 'ext') {
    throw new FiredeckError('invalid_state', `${img} holds no ext2/3/4 filesystem`, {
      hint: 'Offline writes need a raw ext4 root disk; start the VM and use the online path.',
    });
  }
  const sb = format.superblock;
  if (
    sb.incompat & (EXT_INCOMPAT_RECOVER | EXT_INCOMPAT_JOURNAL_DEV) ||
    !(sb.state & EXT_STATE_VALID) ||
    sb.state & EXT_STATE_ERROR
  ) {
    // A journal still to be replayed would overwrite debugfs's changes when the guest next mounts the disk.
    throw new FiredeckError('invalid_state', `The filesystem in ${img} was not cleanly unmounted`, {
      hint: 'Start the VM and stop it cleanly (or run `e2fsck -fy` on the image), then write again.',
    });
  }
  return sb;
}

function parseGuestPath(p: unknown): string[] {
  if (typeof p !== 'string' || !p.startsWith('/') || p.length > 1024) {
    throw new FiredeckError('invalid_params', 'A guest path must be absolute (inside the guest)');
  }
  const parts = p.slice(1).split('/');
  if (parts.length > 32) throw new FiredeckError('invalid_params', 'A guest path is at most 32 components deep');
  for (const part of parts) {
    if (part === '..') throw new FiredeckError('invalid_params', 'A guest path must not contain ".."');
    if (part === '' || part === '.' || !COMPONENT.test(part)) {
      throw new FiredeckError(
        'invalid_params',
        `A guest path may only hold letters, digits and . _ @ + - (got ${JSON.stringify(p)})`,
      );
    }
  }
  return parts;
}

function validateFiles(request: OfflineWriteRequest): (GuestFile & { parts: string[]; mode: number })[] {
  if (typeof request.vmStopped !== 'function') {
    throw new FiredeckError('invalid_params', 'An offline write needs the daemon’s vmStopped check');
  }
  if (!Array.isArray(request.files) || request.files.length === 0 || request.files.length > MAX_FILES) {
    throw new FiredeckError('invalid_params', `An offline write takes 1 to ${MAX_FILES} files`);
  }
  const seen = new Set<string>();
  return request.files.map((f) => {
    const parts = parseGuestPath(f.path);
    if (seen.has(f.path)) throw new FiredeckError('invalid_params', `${f.path} is given twice`);
    seen.add(f.path);
    for (const [name, id] of [
      ['uid', f.uid],
      ['gid', f.gid],
    ] as const) {
      if (!Number.isInteger(id) || id < 0 || id >= 0xffffffff) {
        throw new FiredeckError('invalid_params', `The ${name} for ${f.path} must be an integer from 0 to 2^32-2`);
      }
    }
    const mode = f.mode ?? 0o600;
    if (!Number.isInteger(mode) || (mode & ~0o700) !== 0 || (mode & 0o400) === 0) {
      throw new FiredeckError('invalid_params', `The mode for ${f.path} must be owner-only and readable (e.g. 0o600)`);
    }
    if (!(f.content instanceof Secret) && typeof f.content !== 'function') {
      throw new FiredeckError('invalid_params', `The content for ${f.path} must be a Secret or a merge function`);
    }
    return { ...f, parts, mode };
  });
}

/** Created parent directories take the owner of the (first) file below them. */
function ownerOf(files: readonly GuestFile[], dir: string): { uid: number; gid: number } {
  const f = files.find((x) => x.path.startsWith(`${dir}/`))!;
  return { uid: f.uid, gid: f.gid };
}

function commandScript(
  planned: readonly PlannedFile[],
  dirs: readonly { path: string; uid: number; gid: number }[],
  dirMode: number,
): string {
  const lines: string[] = [];
  const owner = (p: string, uid: number, gid: number): void => {
    lines.push(`sif ${p} uid ${uid}`, `sif ${p} gid ${gid}`);
  };
  for (const d of dirs) {
    lines.push(`mkdir ${d.path}`, `sif ${d.path} mode 0${(0o40000 | dirMode).toString(8)}`);
    owner(d.path, d.uid, d.gid);
  }
  planned.forEach((p, i) => {
    lines.push(`write /proc/self/fd/${3 + i} ${p.temp}`, `sif ${p.temp} mode 0${(0o100000 | p.mode).toString(8)}`);
    owner(p.temp, p.uid, p.gid);
    if (p.replaced) lines.push(`rm ${p.path}`);
    lines.push(`ln ${p.temp} ${p.path}`, `unlink ${p.temp}`);
  });
  return `${lines.join('\n')}\n`;
}

function pickGuard(sb: Superblock): Intent['guard'] {
  return { uuid: sb.uuid, mountCount: sb.mountCount, mountTime: sb.mountTime, lastCheck: sb.lastCheck };
}

function sameGuard(a: Intent['guard'], b: Intent['guard']): boolean {
  return (
    a.uuid === b.uuid && a.mountCount === b.mountCount && a.mountTime === b.mountTime && a.lastCheck === b.lastCheck
  );
}

function readIntent(state: string): Intent | null {
  try {
    const parsed = JSON.parse(fs.readFileSync(path.join(state, 'intent.json'), 'utf8')) as Intent;
    return parsed.version === 1 ? parsed : null;
  } catch {
    return null;
  }
}

function processStart(pid: number): string | null {
  if (!pidAlive(pid)) return null;
  return procStatFields(pid)?.[19] ?? null;
}

/**
 * The undo log goes first: a kill during the removal must not leave a log without the intent that guards its
 * replay (recovery would then refuse the image).
 */
function removeState(img: string): void {
  const state = stateDirOf(img);
  if (fs.existsSync(path.join(state, 'undo'))) {
    fs.rmSync(path.join(state, 'undo'));
    fsyncPath(state);
  }
  fs.rmSync(state, { recursive: true, force: true });
  fsyncPath(path.dirname(img));
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
