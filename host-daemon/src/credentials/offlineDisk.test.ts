import { spawn, spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { FiredeckError, type ErrorKind } from '../../../src/shared/errors';
import { spawnCrashChild, useCrashChild, useTempDirs } from './testing/childProcess';
import { OfflineDiskWriter, type OfflineWritePhase, type RecoveryOutcome } from './offlineDisk';
import { Secret } from './secret';
import { crc32cLe, parseUndoLog, replayUndoLog } from './undoLog';

// Real ext4 images made with mkfs.ext4 -d, real debugfs and e2fsck; no VM needed. Checks read the images with
// debugfs directly (not through the writer's own helpers).

const child = useCrashChild();
const tempDir = useTempDirs('fdt-offline-');
const sleepers: number[] = [];
afterEach(() => {
  for (const pid of sleepers.splice(0)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // Gone.
    }
  }
});

function run(cmd: string, args: string[]): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')}: ${r.status} ${r.stderr}`);
  return r.stdout;
}

interface TreeFile {
  content: string | Buffer;
  mode?: number;
  uid?: number;
  gid?: number;
}

/** An ext4 image holding /home/u (1000:1000) and the given files; symlinks as `path -> target`. */
function makeImage(
  dir: string,
  files: Record<string, TreeFile>,
  options: { symlinks?: Record<string, string>; blockSize?: number; size?: string } = {},
): string {
  const root = path.join(dir, `root-${randomBytes(3).toString('hex')}`);
  fs.mkdirSync(path.join(root, 'home/u'), { recursive: true });
  fs.mkdirSync(path.join(root, 'etc'));
  fs.writeFileSync(path.join(root, 'etc/passwd'), 'root:x:0:0::/root:/bin/sh\n');
  fs.chownSync(path.join(root, 'home/u'), 1000, 1000);
  for (const [p, f] of Object.entries(files)) {
    const file = path.join(root, p);
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(file, f.content);
    fs.chmodSync(file, f.mode ?? 0o644);
    fs.chownSync(file, f.uid ?? 1000, f.gid ?? 1000);
  }
  for (const [p, target] of Object.entries(options.symlinks ?? {})) fs.symlinkSync(target, path.join(root, p));
  const img = path.join(dir, `rootfs-${randomBytes(3).toString('hex')}.ext4`);
  run('mkfs.ext4', [
    '-q',
    ...(options.blockSize ? ['-b', String(options.blockSize)] : []),
    '-d',
    root,
    img,
    options.size ?? '64M',
  ]);
  fs.rmSync(root, { recursive: true });
  return img;
}

interface GuestStat {
  type: string;
  mode: number;
  uid: number;
  gid: number;
  size: number;
}

function gstat(img: string, p: string): GuestStat | null {
  const r = spawnSync('debugfs', ['-c', '-R', `stat ${p}`, img], { encoding: 'utf8' });
  const m = /Type: (\w+)\s+Mode:\s+([0-7]+)[\s\S]*?User:\s+(\d+)\s+Group:\s+(\d+).*?Size: (\d+)/.exec(r.stdout);
  if (m === null) return null;
  return { type: m[1]!, mode: parseInt(m[2]!, 8), uid: Number(m[3]), gid: Number(m[4]), size: Number(m[5]) };
}

function gcat(img: string, p: string): Buffer | null {
  if (gstat(img, p) === null) return null;
  return spawnSync('debugfs', ['-c', '-R', `cat ${p}`, img]).stdout;
}

function gls(img: string, dir: string): string[] {
  const out = spawnSync('debugfs', ['-c', '-R', `ls -p ${dir}`, img], { encoding: 'utf8' }).stdout;
  return out
    .split('\n')
    .filter((l) => l.startsWith('/'))
    .map((l) => l.split('/')[5]!)
    .filter((n) => n !== '.' && n !== '..');
}

function fsck(img: string): number {
  return spawnSync('e2fsck', ['-fn', img]).status ?? -1;
}

function sha(file: string): string {
  return createHash('sha256').update(fs.readFileSync(file)).digest('hex');
}

function writer(
  dir: string,
  extra: Partial<ConstructorParameters<typeof OfflineDiskWriter>[0]> = {},
): OfflineDiskWriter {
  return new OfflineDiskWriter({ stagingDir: path.join(dir, 'run/offline'), ...extra });
}

const stopped = (): boolean => true;

/** A credential-like JSON with random tokens; `needle` is one of them. */
function token(bytes = 48): { secret: Secret; text: string; needle: string } {
  const needle = randomBytes(bytes).toString('base64url');
  const text = JSON.stringify({ tokens: { access_token: needle, refresh_token: randomBytes(32).toString('hex') } });
  return { secret: Secret.from(text), text, needle };
}

async function refused(p: Promise<unknown>, kind: ErrorKind): Promise<FiredeckError> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(FiredeckError);
    expect((err as FiredeckError).kind).toBe(kind);
    return err as FiredeckError;
  }
  throw new Error(`expected a ${kind} error`);
}

describe('OfflineDiskWriter', () => {
  it('writes a new file, creating its parent directories with the right owner and modes', async () => {
    const dir = tempDir();
    const img = makeImage(dir, {});
    const c = token();
    const w = writer(dir);
    const result = await w.write({
      image: img,
      files: [{ path: '/home/u/.codex/auth.json', content: c.secret, uid: 1000, gid: 1000 }],
      vmStopped: stopped,
    });
    expect(result.files).toEqual([
      { path: '/home/u/.codex/auth.json', sha256: c.secret.sha256(), size: c.secret.size, replaced: false },
    ]);
    expect(result.createdDirs).toEqual(['/home/u/.codex']);
    expect(result.recovery).toBe('clean');
    expect(gcat(img, '/home/u/.codex/auth.json')!.toString()).toBe(c.text);
    expect(gstat(img, '/home/u/.codex/auth.json')).toEqual({
      type: 'regular',
      mode: 0o600,
      uid: 1000,
      gid: 1000,
      size: c.secret.size,
    });
    expect(gstat(img, '/home/u/.codex')).toMatchObject({ type: 'directory', mode: 0o700, uid: 1000, gid: 1000 });
    expect(gls(img, '/home/u/.codex')).toEqual(['auth.json']);
    expect(fsck(img)).toBe(0);
    expect(OfflineDiskWriter.hasPendingWrite(img)).toBe(false);
    expect(fs.readdirSync(path.join(dir, 'run/offline'))).toEqual([]);
    expect(fs.statSync(path.join(dir, 'run/offline')).mode & 0o777).toBe(0o700);
  });

  it('replaces an existing file (new inode, mode 0600, new owner) on a 4 KiB-block filesystem too', async () => {
    for (const blockSize of [1024, 4096]) {
      const dir = tempDir();
      const img = makeImage(
        dir,
        { 'home/u/.codex/auth.json': { content: 'old credential', mode: 0o644, uid: 0, gid: 0 } },
        { blockSize },
      );
      const c = token();
      const result = await writer(dir).write({
        image: img,
        files: [{ path: '/home/u/.codex/auth.json', content: c.secret, uid: 70000, gid: 1000 }],
        vmStopped: stopped,
      });
      expect(result.files[0]!.replaced).toBe(true);
      expect(result.createdDirs).toEqual([]);
      expect(gcat(img, '/home/u/.codex/auth.json')!.toString()).toBe(c.text);
      expect(gstat(img, '/home/u/.codex/auth.json')).toMatchObject({ mode: 0o600, uid: 70000, gid: 1000 });
      expect(gls(img, '/home/u/.codex')).toEqual(['auth.json']);
      expect(fsck(img)).toBe(0);
    }
  });

  it('merges a companion file, keeping its other fields, in the same atomic write as the credential', async () => {
    const dir = tempDir();
    const companion = { numStartups: 7, theme: 'dark', projects: { '/home/u': { allowedTools: [] } } };
    const img = makeImage(dir, { 'home/u/.claude.json': { content: JSON.stringify(companion), mode: 0o644 } });
    const w = writer(dir);
    const current = await w.read(img, '/home/u/.claude.json', { vmStopped: stopped });
    expect(JSON.parse(current!.text())).toEqual(companion);
    expect(await w.read(img, '/home/u/.claude/.credentials.json', { vmStopped: stopped })).toBeNull();
    const c = token();
    await w.write({
      image: img,
      files: [
        { path: '/home/u/.claude/.credentials.json', content: c.secret, uid: 1000, gid: 1000 },
        {
          path: '/home/u/.claude.json',
          content: (old) => Secret.from(JSON.stringify({ ...JSON.parse(old!.text()), hasCompletedOnboarding: true })),
          uid: 1000,
          gid: 1000,
        },
      ],
      vmStopped: stopped,
    });
    expect(JSON.parse(gcat(img, '/home/u/.claude.json')!.toString())).toEqual({
      ...companion,
      hasCompletedOnboarding: true,
    });
    expect(gcat(img, '/home/u/.claude/.credentials.json')!.toString()).toBe(c.text);
    expect(gstat(img, '/home/u/.claude.json')).toMatchObject({ mode: 0o600, uid: 1000 });
    expect(fsck(img)).toBe(0);
  });

  it('runs concurrent writes to one image one after the other, from any writer instance', async () => {
    const dir = tempDir();
    const img = makeImage(dir, {});
    const a = token();
    const b = token();
    const [ra, rb] = await Promise.all([
      writer(dir).write({
        image: img,
        files: [{ path: '/home/u/a.json', content: a.secret, uid: 1000, gid: 1000 }],
        vmStopped: stopped,
      }),
      writer(dir).write({
        image: img,
        files: [{ path: '/home/u/b.json', content: b.secret, uid: 1000, gid: 1000 }],
        vmStopped: stopped,
      }),
    ]);
    expect([ra.recovery, rb.recovery]).toEqual(['clean', 'clean']);
    expect(gcat(img, '/home/u/a.json')!.toString()).toBe(a.text);
    expect(gcat(img, '/home/u/b.json')!.toString()).toBe(b.text);
    expect(fsck(img)).toBe(0);
  });

  describe('refuses, and leaves the image untouched', () => {
    async function expectRefusal(
      img: string,
      request: Partial<Parameters<OfflineDiskWriter['write']>[0]>,
      kind: ErrorKind,
      dir: string,
    ): Promise<FiredeckError> {
      const before = sha(img);
      const err = await refused(
        writer(dir).write({
          image: img,
          files: [{ path: '/home/u/.codex/auth.json', content: token().secret, uid: 1000, gid: 1000 }],
          vmStopped: stopped,
          ...request,
        }),
        kind,
      );
      expect(sha(img)).toBe(before);
      expect(OfflineDiskWriter.hasPendingWrite(img)).toBe(false);
      return err;
    }
    const file = (p: string): Parameters<OfflineDiskWriter['write']>[0]['files'] => [
      { path: p, content: token().secret, uid: 1000, gid: 1000 },
    ];

    it('paths that are relative, climb with .., or hold odd characters', async () => {
      const dir = tempDir();
      const img = makeImage(dir, {});
      for (const p of [
        'home/u/x',
        '/home/u/../../etc/shadow',
        '/home//u/x',
        '/home/u/./x',
        '/home/u/x/',
        '/home/u/a b',
        '/home/u/x\nrm /etc/passwd',
      ]) {
        await expectRefusal(img, { files: file(p) }, 'invalid_params', dir);
      }
    });

    it('a symlink anywhere on the path, or as the target', async () => {
      const dir = tempDir();
      const img = makeImage(
        dir,
        { 'home/u/real/auth.json': { content: 'x' } },
        {
          symlinks: { 'home/u/.codex': '/etc', 'home/u/real/link.json': '/etc/passwd' },
        },
      );
      expect(gstat(img, '/home/u/.codex')!.type).toBe('symlink');
      const err = await expectRefusal(img, { files: file('/home/u/.codex/auth.json') }, 'permission_denied', dir);
      expect(err.message).toContain('/home/u/.codex');
      await expectRefusal(img, { files: file('/home/u/real/link.json') }, 'permission_denied', dir);
      await refused(writer(dir).read(img, '/home/u/.codex/passwd', { vmStopped: stopped }), 'permission_denied');
      expect(gcat(img, '/etc/passwd')!.toString()).toBe('root:x:0:0::/root:/bin/sh\n');
    });

    it('a qcow2 overlay, with the hint to use the online path; a file that is no ext image', async () => {
      const dir = tempDir();
      const base = makeImage(dir, {});
      const overlay = path.join(dir, 'overlay.qcow2');
      run('qemu-img', ['create', '-q', '-f', 'qcow2', '-b', base, '-F', 'raw', overlay]);
      const err = await expectRefusal(overlay, {}, 'invalid_state', dir);
      expect(err.message).toMatch(/qcow2/);
      expect(err.hint).toMatch(/Start the VM.*online path/);
      const junk = path.join(dir, 'junk.img');
      fs.writeFileSync(junk, randomBytes(1 << 16));
      await expectRefusal(junk, {}, 'invalid_state', dir);
    });

    it('a VM the daemon does not report stopped', async () => {
      const dir = tempDir();
      const img = makeImage(dir, {});
      await expectRefusal(img, { vmStopped: () => false }, 'invalid_state', dir);
      await expectRefusal(img, { vmStopped: async () => false }, 'invalid_state', dir);
    });

    it('an image a live process holds open, and one attached to a loop device', async () => {
      const dir = tempDir();
      const img = makeImage(dir, {});
      const sleeper = spawn('bash', ['-c', 'exec 3<"$1"; echo ready; exec sleep 600', '_', img], {
        stdio: ['ignore', 'pipe', 'ignore'],
      });
      sleepers.push(sleeper.pid!);
      await new Promise((r) => sleeper.stdout.once('data', r));
      const err = await expectRefusal(img, {}, 'conflict', dir);
      expect(err.message).toContain(`pid ${sleeper.pid} (sleep)`);
      await refused(writer(dir).read(img, '/etc/passwd', { vmStopped: stopped }), 'conflict');
      sleeper.kill('SIGKILL');
      await new Promise((r) => sleeper.once('close', r));
      const loop = run('losetup', ['--find', '--show', img]).trim();
      try {
        const err2 = await expectRefusal(img, {}, 'conflict', dir);
        expect(err2.message).toContain(loop);
      } finally {
        run('losetup', ['-d', loop]);
      }
      // Free again: the write goes through.
      await writer(dir).write({ image: img, files: file('/home/u/x.json'), vmStopped: stopped });
    });

    it('a filesystem that was not cleanly unmounted, or that has errors', async () => {
      const dir = tempDir();
      const unclean = makeImage(dir, {});
      run('debugfs', ['-w', '-R', 'feature needs_recovery', unclean]);
      await expectRefusal(unclean, {}, 'invalid_state', dir);
      const broken = makeImage(dir, { 'home/u/f': { content: 'x' } });
      run('debugfs', ['-w', '-R', 'sif /home/u/f links_count 5', broken]);
      expect(fsck(broken)).not.toBe(0);
      await expectRefusal(broken, {}, 'invalid_state', dir);
    });
  });

  it('keeps the plaintext out of every argv and named file, and out of the tools’ environment', async () => {
    const dir = tempDir();
    const img = makeImage(dir, { 'home/u/.codex/auth.json': { content: 'old' } });
    const staging = path.join(dir, 'run/offline');
    const log = path.join(dir, 'tools.log');
    const bin = path.join(dir, 'bin');
    fs.mkdirSync(bin);
    for (const [name, real] of [
      ['debugfs', '/usr/sbin/debugfs'],
      ['e2fsck', '/usr/sbin/e2fsck'],
    ] as const) {
      // Records argv, the process's cmdline and environment, its extra fds (mode, target), what is named in the
      // staging dir, and the command file it is given; then becomes the real tool.
      fs.writeFileSync(
        path.join(bin, name),
        `#!/bin/sh
{
  echo "== ${name}"; printf 'argv:'; printf ' %s' "$@"; echo
  printf 'cmdline:'; tr '\\0' ' ' < /proc/$$/cmdline; echo
  printf 'env:'; env | tr '\\n' ' '; echo
  for fd in 3 4 5 6; do [ -e /proc/self/fd/$fd ] && echo "fd$fd mode $(stat -L -c %a /proc/self/fd/$fd) $(readlink /proc/self/fd/$fd)"; done
  echo "staging: $(ls -A '${staging}' | tr '\\n' ' ')"
  for a in "$@"; do case "$a" in /proc/self/fd/*) echo "command file:"; cat "$a";; esac; done
} >> '${log}'
exec ${real} "$@"
`,
        { mode: 0o755 },
      );
    }
    const c = token();
    const logs: string[] = [];
    process.env.FIREDECK_TEST_SECRET_ENV = c.needle;
    try {
      await writer(dir, {
        tools: { debugfs: path.join(bin, 'debugfs'), e2fsck: path.join(bin, 'e2fsck') },
        log: (l) => logs.push(l),
      }).write({
        image: img,
        files: [{ path: '/home/u/.codex/auth.json', content: c.secret, uid: 1000, gid: 1000 }],
        vmStopped: stopped,
      });
    } finally {
      delete process.env.FIREDECK_TEST_SECRET_ENV;
    }
    const text = fs.readFileSync(log, 'utf8');
    expect(gcat(img, '/home/u/.codex/auth.json')!.toString()).toBe(c.text);
    // The wrappers saw every run: stat, write (-w -z), cat, fsck.
    expect(text).toMatch(/argv: -w -z \S+undo -f \/proc\/self\/fd\/4 /);
    expect(text).toMatch(
      /command file:\nwrite \/proc\/self\/fd\/3 \/home\/u\/\.codex\/\.auth\.json\.fdw-[0-9a-f]{8}\n/,
    );
    expect(text).toContain('argv: -fn');
    // The content went as an unnamed 0600 file (O_TMPFILE): nothing named in the staging dir, ever.
    expect(text).toMatch(/fd3 mode 600 \S+\/run\/offline\/#\d+ \(deleted\)/);
    expect(text).not.toMatch(/staging: \S/);
    expect(text).not.toContain(c.needle);
    expect(text).not.toContain('FIREDECK_TEST_SECRET_ENV');
    // Its log line names the path and the hash, not the content.
    expect(logs.join('\n')).toContain(c.secret.sha256());
    expect(logs.join('\n')).not.toContain(c.needle);
  });

  describe('a write that fails at any point leaves the old files or the new ones', () => {
    const phases: OfflineWritePhase[] = ['checked', 'intent', 'debugfs', 'applied', 'verified', 'committed'];
    it.each(phases)('failure at %s', async (failAt) => {
      const dir = tempDir();
      const img = makeImage(dir, { 'home/u/.codex/auth.json': { content: 'old credential' } });
      const before = sha(img);
      const c = token();
      const w = writer(dir, {
        onPhase: (p) => {
          if (p === failAt) throw new Error(`injected at ${p}`);
        },
      });
      await expect(
        w.write({
          image: img,
          files: [
            { path: '/home/u/.gemini/oauth_creds.json', content: c.secret, uid: 1000, gid: 1000 },
            { path: '/home/u/.codex/auth.json', content: c.secret, uid: 1000, gid: 1000 },
          ],
          vmStopped: stopped,
        }),
      ).rejects.toThrow(/injected/);
      const outcome = await writer(dir).recover(img, { vmStopped: stopped });
      expect(OfflineDiskWriter.hasPendingWrite(img)).toBe(false);
      expect(fsck(img)).toBe(0);
      if (failAt === 'committed') {
        expect(outcome).toBe('finished');
        expect(gcat(img, '/home/u/.codex/auth.json')!.toString()).toBe(c.text);
        expect(gcat(img, '/home/u/.gemini/oauth_creds.json')!.toString()).toBe(c.text);
      } else {
        // Rolled back by the failing write itself: byte for byte the image it started from.
        expect(outcome).toBe('clean');
        expect(sha(img)).toBe(before);
      }
    });

    it('debugfs failing half-way (the disk fills up) is undone, though debugfs goes on after errors', async () => {
      const dir = tempDir();
      const img = makeImage(
        dir,
        { 'home/u/.codex/auth.json': { content: 'old credential' }, 'home/u/fill': { content: randomBytes(5 << 20) } },
        { size: '8M' },
      );
      const before = sha(img);
      const err = await refused(
        writer(dir).write({
          image: img,
          files: [
            { path: '/home/u/.codex/auth.json', content: Secret.from(randomBytes(3 << 20)), uid: 1000, gid: 1000 },
          ],
          vmStopped: stopped,
        }),
        'internal',
      );
      expect(err.message).toMatch(/debugfs -w/);
      expect(sha(img)).toBe(before);
      expect(gcat(img, '/home/u/.codex/auth.json')!.toString()).toBe('old credential');
      expect(OfflineDiskWriter.hasPendingWrite(img)).toBe(false);
    });
  });

  describe('the undo log', () => {
    it('restores an image exactly after debugfs is killed in the middle of its run', async () => {
      const dir = tempDir();
      const img = makeImage(dir, { 'home/u/big': { content: randomBytes(1 << 20) } });
      const before = sha(img);
      const payload = path.join(dir, 'payload');
      fs.writeFileSync(payload, randomBytes(3 << 20));
      const cmds = path.join(dir, 'cmds');
      fs.writeFileSync(
        cmds,
        `rm /home/u/big\nwrite ${payload} /home/u/new\nmkdir /home/u/d\nsif /home/u/new mode 0100600\n`,
      );
      const undo = path.join(dir, 'undo');
      const debugfs = spawn('debugfs', ['-w', '-z', undo, '-f', cmds, img], { stdio: ['ignore', 'pipe', 'ignore'] });
      // Killed as soon as it reports the write: it is then copying 3 MiB through its block cache.
      await new Promise<void>((resolve) => {
        let seen = '';
        debugfs.stdout.on('data', (chunk: Buffer) => {
          seen += chunk.toString();
          if (seen.includes('debugfs: write')) {
            debugfs.kill('SIGKILL');
            resolve();
          }
        });
      });
      await new Promise((r) => debugfs.once('close', r));
      expect(sha(img)).not.toBe(before);
      const log = parseUndoLog(undo);
      expect(log.finished).toBe(false);
      expect(log.blocks.length).toBeGreaterThan(0);
      replayUndoLog(log, img);
      expect(sha(img)).toBe(before);
      replayUndoLog(parseUndoLog(undo), img);
      expect(sha(img)).toBe(before);
      expect(fsck(img)).toBe(0);
    });

    function finishedLog(dir: string): { img: string; before: string; undo: string; after: string } {
      const img = makeImage(dir, {});
      const before = sha(img);
      const undo = path.join(dir, 'undo');
      const payload = path.join(dir, 'payload');
      fs.writeFileSync(payload, randomBytes(40 << 10));
      run('debugfs', ['-w', '-z', undo, '-R', `write ${payload} /home/u/new`, img]);
      return { img, before, undo, after: sha(img) };
    }

    it('restores a torn last extent (key block written, its data block not) and refuses other damage', () => {
      const dir = tempDir();
      const { img, before, undo, after } = finishedLog(dir);
      expect(after).not.toBe(before);
      const good = fs.readFileSync(undo);
      const blockSize = good.readUInt32LE(32);
      // Find the last key and extend it by one block whose data never reached the file, as a kill between the
      // two writes of a flush leaves it.
      const numKeys = Number(good.readBigUInt64LE(8));
      const keyOffset = Number(good.readBigUInt64LE(24));
      const keysPerBlock = blockSize / 16 - 1;
      expect(numKeys).toBeLessThan(keysPerBlock);
      const keyBlock = keyOffset * blockSize;
      const lastKey = keyBlock + 16 + (numKeys - 1) * 16;
      const torn = Buffer.from(good);
      const size = torn.readUInt32LE(lastKey + 12);
      torn.writeUInt32LE(size + blockSize, lastKey + 12);
      torn.writeUInt32LE(0x12345678, lastKey + 8);
      torn.writeUInt32LE(0, keyBlock + 4);
      torn.writeUInt32LE(crc32cLe(0xffffffff, torn.subarray(keyBlock, keyBlock + blockSize)), keyBlock + 4);
      expect(good.byteLength % blockSize).toBe(0);
      fs.writeFileSync(undo, torn);
      const log = parseUndoLog(undo);
      expect(log.trimmedTornExtent).toBe(true);
      replayUndoLog(log, img);
      expect(sha(img)).toBe(before);
      // A checksum failure anywhere else is not guessed at.
      const bad = Buffer.from(good);
      const at = (keyOffset + 1) * blockSize + 7;
      bad[at] = bad[at]! ^ 0xff;
      fs.writeFileSync(undo, bad);
      expect(() => parseUndoLog(undo)).toThrow(FiredeckError);
      // An undo file whose header was never written recorded nothing (and so nothing was written).
      fs.writeFileSync(undo, Buffer.alloc(3 * blockSize));
      expect(parseUndoLog(undo).blocks).toEqual([]);
    });
  });

  it('refuses to undo an interrupted write once the image was mounted or checked since', async () => {
    const dir = tempDir();
    const img = makeImage(dir, { 'home/u/.codex/auth.json': { content: 'old credential' } });
    const spec = path.join(dir, 'spec.json');
    const content = path.join(dir, 'content');
    fs.writeFileSync(content, token().text, { mode: 0o600 });
    fs.writeFileSync(
      spec,
      JSON.stringify({
        image: img,
        stagingDir: path.join(dir, 'run'),
        killAt: 'applied',
        files: [{ path: '/home/u/.codex/auth.json', contentFile: content, uid: 1000, gid: 1000 }],
      }),
    );
    const c = spawnCrashChild(child(), ['offline-write', spec]);
    expect((await c.exited).signal).toBe('SIGKILL');
    expect(OfflineDiskWriter.hasPendingWrite(img)).toBe(true);
    run('tune2fs', ['-C', '9', img]); // What a boot would do to the mount count.
    await refused(writer(dir).recover(img, { vmStopped: stopped }), 'integrity');
    await refused(
      writer(dir).write({
        image: img,
        files: [{ path: '/home/u/x', content: token().secret, uid: 1, gid: 1 }],
        vmStopped: stopped,
      }),
      'integrity',
    );
    expect(OfflineDiskWriter.hasPendingWrite(img)).toBe(true);
  });

  it('a writer killed with SIGKILL at any moment leaves the old files or the new ones, and e2fsck passes', async () => {
    const dir = tempDir();
    const oldAuth = randomBytes(60 << 10).toString('base64');
    const base = makeImage(dir, { 'home/u/.codex/auth.json': { content: oldAuth, mode: 0o644 } });
    const baseSha = sha(base);
    const img = path.join(dir, 'vm-rootfs.ext4');
    const staging = path.join(dir, 'run/offline');
    const newAuth = token(200 << 10);
    const newGemini = token();
    const contents = [newAuth, newGemini].map((t, i) => {
      const f = path.join(dir, `content-${i}`);
      fs.writeFileSync(f, t.text, { mode: 0o600 });
      return f;
    });
    const spec = (killAt?: OfflineWritePhase): string => {
      const f = path.join(dir, 'spec.json');
      fs.writeFileSync(
        f,
        JSON.stringify({
          image: img,
          stagingDir: staging,
          ...(killAt ? { killAt } : {}),
          files: [
            { path: '/home/u/.codex/auth.json', contentFile: contents[0], uid: 1000, gid: 1000 },
            { path: '/home/u/.gemini/oauth_creds.json', contentFile: contents[1], uid: 1000, gid: 1000 },
          ],
        }),
      );
      return f;
    };
    const w = writer(dir);
    const tally: Record<string, number> = {};
    let tornBeforeRecovery = 0;
    const settle = async (label: string): Promise<{ outcome: RecoveryOutcome; state: 'old' | 'new' }> => {
      if (OfflineDiskWriter.hasPendingWrite(img) && fsck(img) !== 0) tornBeforeRecovery++;
      const outcome = await w.recover(img, { vmStopped: stopped });
      expect(fsck(img), label).toBe(0);
      expect(OfflineDiskWriter.hasPendingWrite(img)).toBe(false);
      expect(fs.existsSync(staging) ? fs.readdirSync(staging) : []).toEqual([]);
      expect(
        gls(img, '/home/u/.codex').filter((n) => n !== 'auth.json'),
        label,
      ).toEqual([]);
      const auth = gcat(img, '/home/u/.codex/auth.json')!.toString();
      const gemini = gcat(img, '/home/u/.gemini/oauth_creds.json');
      let state: 'old' | 'new';
      if (auth === oldAuth) {
        state = 'old';
        expect(gemini, label).toBeNull();
        expect(sha(img), `${label}: an undone write leaves the image byte for byte as it was`).toBe(baseSha);
      } else {
        state = 'new';
        expect(auth, label).toBe(newAuth.text);
        expect(gemini?.toString(), label).toBe(newGemini.text);
        expect(gstat(img, '/home/u/.codex/auth.json'), label).toMatchObject({ mode: 0o600, uid: 1000, gid: 1000 });
        expect(gstat(img, '/home/u/.gemini'), label).toMatchObject({ type: 'directory', mode: 0o700, uid: 1000 });
      }
      tally[`${state}/${outcome}`] = (tally[`${state}/${outcome}`] ?? 0) + 1;
      return { outcome, state };
    };
    const fresh = (): void => {
      fs.copyFileSync(base, img);
    };

    // A run left alone, to learn how long a write takes here.
    fresh();
    const calib = spawnCrashChild(child(), ['offline-write', spec()]);
    await calib.waitForLine((l) => l === 'phase start');
    const t0 = Date.now();
    await calib.waitForLine((l) => l.startsWith('done '));
    const writeMs = Date.now() - t0;
    await calib.exited;
    expect((await settle('uninterrupted')).state).toBe('new');

    // Dying exactly at each phase (SIGKILL to itself: no finally block runs).
    const expected: Record<OfflineWritePhase, 'old' | 'new'> = {
      checked: 'old',
      intent: 'old',
      debugfs: 'old',
      applied: 'old',
      verified: 'old',
      committed: 'new',
    };
    for (const phase of Object.keys(expected) as OfflineWritePhase[]) {
      fresh();
      const c = spawnCrashChild(child(), ['offline-write', spec(phase)]);
      expect((await c.exited).signal).toBe('SIGKILL');
      expect((await settle(`killed at ${phase}`)).state).toBe(expected[phase]);
    }

    // Killed with its whole process group (its debugfs or e2fsck too, as systemd stops a service) at random
    // moments: half anywhere in the write, half inside debugfs's run.
    for (let round = 0; round < 30; round++) {
      fresh();
      const c = spawnCrashChild(child(), ['offline-write', spec()]);
      const inDebugfs = round % 2 === 1;
      await c.waitForLine((l) => l === (inDebugfs ? 'phase debugfs' : 'phase start'));
      await new Promise((r) => setTimeout(r, Math.random() * (inDebugfs ? 25 : writeMs * 1.1)));
      await c.killGroup();
      await settle(`round ${round} (${c.lines.at(-1) ?? ''})`);
    }
    console.log(
      `offline writer kill test: a write takes ${writeMs} ms here; outcomes ${JSON.stringify(tally)}; ` +
        `${tornBeforeRecovery} images failed e2fsck before recovery`,
    );
    expect(tally['old/rolled-back'] ?? 0).toBeGreaterThan(0);
    expect(Object.keys(tally).some((k) => k.startsWith('new/'))).toBe(true);
  }, 240_000);
});
