import { spawn } from 'node:child_process';
import fs from 'node:fs';
import { FiredeckError } from '../../../src/shared/errors';

/** The e2fsprogs binaries the offline writer runs (tests point them at wrappers that record their argv). */
export interface E2fsTools {
  debugfs: string;
  e2fsck: string;
}

export const DEFAULT_E2FS_TOOLS: E2fsTools = { debugfs: 'debugfs', e2fsck: 'e2fsck' };

export interface ToolResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: Buffer;
  stderr: string;
}

const MAX_STDOUT = 8 * 1024 * 1024;

/**
 * Runs one tool with a clean environment (the daemon's may hold configuration a child must not inherit) and the
 * given open files as fds 3, 4, ... Argv carries paths and options only, never content.
 */
export function runTool(
  file: string,
  args: readonly string[],
  options: { fds?: readonly number[]; timeoutMs: number },
): Promise<ToolResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, {
      stdio: ['ignore', 'pipe', 'pipe', ...(options.fds ?? [])],
      env: { PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin', LANG: 'C', DEBUGFS_PAGER: '__none__' },
    });
    const out: Buffer[] = [];
    let outBytes = 0;
    let stderr = '';
    let overflow = false;
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs);
    child.stdout!.on('data', (chunk: Buffer) => {
      outBytes += chunk.byteLength;
      if (outBytes > MAX_STDOUT) {
        overflow = true;
        child.kill('SIGKILL');
      } else out.push(chunk);
    });
    child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
    child.once('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      reject(
        new FiredeckError('unavailable', `Cannot run ${file}: ${err.code ?? err.message}`, {
          hint: 'Install e2fsprogs on the host (it provides debugfs and e2fsck).',
        }),
      );
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      if (overflow) {
        reject(new FiredeckError('resource_exhausted', `${file} printed more than ${MAX_STDOUT} bytes`));
        return;
      }
      resolve({ code, signal, stdout: Buffer.concat(out), stderr });
    });
  });
}

/** What debugfs's `stat` says about an inode. */
export interface InodeInfo {
  inode: number;
  type: 'regular' | 'directory' | 'symlink' | 'other';
  /** Permission bits (0o7777). */
  mode: number;
  uid: number;
  gid: number;
  size: number;
  links: number;
}

export function parseStat(text: string): InodeInfo | null {
  const head = /^Inode: (\d+)\s+Type: ([a-z ]+?)\s+Mode:\s+([0-7]+)/m.exec(text);
  const owner = /^User:\s+(\d+)\s+Group:\s+(\d+)(?:\s+Project:\s+\d+)?\s+Size: (\d+)/m.exec(text);
  const links = /^Links: (\d+)/m.exec(text);
  if (head === null || owner === null || links === null) return null;
  const type = head[2]!;
  return {
    inode: Number(head[1]),
    type: type === 'regular' || type === 'directory' || type === 'symlink' ? type : 'other',
    mode: parseInt(head[3]!, 8),
    uid: Number(owner[1]),
    gid: Number(owner[2]),
    size: Number(owner[3]),
    links: Number(links[1]),
  };
}

/**
 * `stat`s several guest paths in one read-only debugfs run (`-c`: no bitmaps needed). With `-f`, debugfs echoes
 * each command as `debugfs: <command>` on stdout; a path that does not exist gets an empty section.
 */
export async function statPaths(
  tools: E2fsTools,
  image: string,
  paths: readonly string[],
  commandFd: (text: string) => number,
): Promise<Map<string, InodeInfo | null>> {
  const fd = commandFd(paths.map((p) => `stat ${p}\n`).join(''));
  try {
    const r = await runTool(tools.debugfs, ['-c', '-f', '/proc/self/fd/3', image], { fds: [fd], timeoutMs: 60_000 });
    if (r.code !== 0) throw toolFailed('debugfs stat', image, r);
    const found = new Map<string, InodeInfo | null>();
    const sections = r.stdout
      .toString('utf8')
      .split(/^debugfs: stat /m)
      .slice(1);
    for (const section of sections) {
      const nl = section.indexOf('\n');
      const p = nl < 0 ? section : section.slice(0, nl);
      found.set(p, parseStat(section));
    }
    for (const p of paths) {
      if (!found.has(p)) throw toolFailed('debugfs stat', image, r);
      if (found.get(p) === null && !r.stderr.includes(`${p}: File not found by ext2_lookup`)) {
        throw toolFailed(`debugfs stat ${p}`, image, r);
      }
    }
    return found;
  } finally {
    fs.closeSync(fd);
  }
}

/** A file's bytes from the image, read-only (`cat` to a pipe). */
export async function catPath(tools: E2fsTools, image: string, guestPath: string): Promise<Buffer> {
  const r = await runTool(tools.debugfs, ['-c', '-R', `cat ${guestPath}`, image], { timeoutMs: 60_000 });
  if (r.code !== 0 || stderrLines(r.stderr).length > 0) throw toolFailed(`debugfs cat ${guestPath}`, image, r);
  return r.stdout;
}

/** `e2fsck -fn`: a full check that changes nothing; exit 0 means no error found. */
export async function checkFilesystem(tools: E2fsTools, image: string): Promise<{ clean: boolean; output: string }> {
  const r = await runTool(tools.e2fsck, ['-fn', image], { timeoutMs: 30 * 60_000 });
  return { clean: r.code === 0, output: `${r.stdout.toString('utf8')}${r.stderr}`.trim() };
}

/** Stderr lines other than the version banner and catastrophic mode's note: debugfs's own error reports. */
export function stderrLines(stderr: string): string[] {
  return stderr
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !/^debugfs \d+\.\d+/.test(l) && !/^catastrophic mode/.test(l));
}

export function toolFailed(what: string, image: string, r: ToolResult): FiredeckError {
  const how = r.signal !== null ? `was killed by ${r.signal}` : `exited with ${r.code}`;
  const tail = stderrLines(r.stderr).slice(-5).join('; ');
  return new FiredeckError('internal', `${what} on ${image} ${how}${tail === '' ? '' : `: ${tail}`}`);
}

/** The superblock fields the writer checks (ext2/3/4 layout, at byte 1024 of the image). */
export interface Superblock {
  state: number;
  mountTime: number;
  mountCount: number;
  lastCheck: number;
  incompat: number;
  uuid: string;
}

export type ImageFormat = { kind: 'ext'; superblock: Superblock } | { kind: 'qcow2' } | { kind: 'unknown' };

export const EXT_STATE_VALID = 0x1;
export const EXT_STATE_ERROR = 0x2;
/** The journal holds transactions not yet applied (the guest did not shut down cleanly). */
export const EXT_INCOMPAT_RECOVER = 0x4;
export const EXT_INCOMPAT_JOURNAL_DEV = 0x8;

export function readImageFormat(image: string): ImageFormat {
  const fd = fs.openSync(image, 'r');
  try {
    const head = Buffer.alloc(2048);
    const n = fs.readSync(fd, head, 0, head.byteLength, 0);
    if (n >= 4 && head.readUInt32BE(0) === 0x514649fb) return { kind: 'qcow2' };
    if (n < 2048 || head.readUInt16LE(1024 + 56) !== 0xef53) return { kind: 'unknown' };
    const sb = head.subarray(1024);
    return {
      kind: 'ext',
      superblock: {
        mountTime: sb.readUInt32LE(44),
        mountCount: sb.readUInt16LE(52),
        state: sb.readUInt16LE(58),
        lastCheck: sb.readUInt32LE(64),
        incompat: sb.readUInt32LE(96),
        uuid: sb.subarray(104, 120).toString('hex'),
      },
    };
  } finally {
    fs.closeSync(fd);
  }
}
