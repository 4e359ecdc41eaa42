import { spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { FiredeckError } from '../../../src/shared/errors';
import { OfflineDiskWriter } from './offlineDisk';
import { Secret } from './secret';
import { useTempDirs } from './testing/childProcess';
import { writeCredentialOffline, writeCredentialOnline, type CredentialPayload } from './transfer';

// The offline path on real ext4 images (mkfs.ext4 -d, debugfs, e2fsck; no VM): the online path needs a guest and
// is covered by test/integration/credential-transfer.test.ts. Checks read the image with debugfs directly.

const tempDir = useTempDirs('fdt-transfer-');
const TOKEN = `rt-${randomBytes(10).toString('hex')}`;

function run(cmd: string, args: string[]): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')}: ${r.status} ${r.stderr}`);
  return r.stdout;
}

/** An ext4 image with /home/firedeck (1000:1000, 0755) holding the given files. */
function makeImage(dir: string, files: Record<string, string>): string {
  const root = path.join(dir, 'root');
  const home = path.join(root, 'home/firedeck');
  fs.mkdirSync(home, { recursive: true });
  fs.chmodSync(home, 0o755);
  fs.chownSync(home, 1000, 1000);
  for (const [p, content] of Object.entries(files)) {
    const file = path.join(home, p);
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(file, content, { mode: 0o644 });
    fs.chownSync(file, 1000, 1000);
  }
  const img = path.join(dir, 'rootfs.ext4');
  run('mkfs.ext4', ['-q', '-d', root, img, '32M']);
  fs.rmSync(root, { recursive: true });
  return img;
}

function cat(img: string, p: string): string {
  return run('debugfs', ['-c', '-R', `cat ${p}`, img]);
}

function statOf(img: string, p: string): string {
  const out = run('debugfs', ['-c', '-R', `stat ${p}`, img]);
  const mode = /Mode:\s+([0-7]+)/.exec(out)![1];
  const owner = /User:\s+(\d+)\s+Group:\s+(\d+)/.exec(out)!;
  return `${mode} ${owner[1]}:${owner[2]}`;
}

function claude(credential: string, companion: string | null): CredentialPayload {
  return {
    provider: 'claude_code',
    files: [
      { path: '.claude/.credentials.json', content: Secret.from(credential), mode: 0o600 },
      ...(companion === null ? [] : [{ path: '.claude.json', content: Secret.from(companion), mode: 0o644 }]),
    ],
  };
}

describe('writeCredentialOffline', () => {
  it('writes the credential 0600 under a new 0700 dir and merges the companion into the disk’s copy', async () => {
    const dir = tempDir();
    const img = makeImage(dir, { '.claude.json': '{"theme":"dark","hasCompletedOnboarding":false}' });
    const writer = new OfflineDiskWriter({ stagingDir: path.join(dir, 'staging') });
    const credential = JSON.stringify({ claudeAiOauth: { refreshToken: TOKEN } });
    const result = await writeCredentialOffline({
      writer,
      image: img,
      payload: claude(credential, '{"hasCompletedOnboarding":true,"userID":"u1"}'),
      vmStopped: () => true,
    });
    const merged = cat(img, '/home/firedeck/.claude.json');
    expect(JSON.parse(merged)).toEqual({ theme: 'dark', hasCompletedOnboarding: true, userID: 'u1' });
    expect(result).toEqual({
      mode: 'offline',
      verifiedBy: 'hash',
      files: [
        {
          path: '/home/firedeck/.claude/.credentials.json',
          sha256: createHash('sha256').update(credential).digest('hex'),
        },
        { path: '/home/firedeck/.claude.json', sha256: createHash('sha256').update(merged).digest('hex') },
      ],
    });
    expect(cat(img, '/home/firedeck/.claude/.credentials.json')).toBe(credential);
    expect(statOf(img, '/home/firedeck/.claude/.credentials.json')).toBe('0600 1000:1000');
    expect(statOf(img, '/home/firedeck/.claude.json')).toBe('0600 1000:1000');
    expect(statOf(img, '/home/firedeck/.claude')).toBe('0700 1000:1000');
  });

  it('refuses an unparsable companion on the disk with a typed error and writes nothing', async () => {
    const dir = tempDir();
    const img = makeImage(dir, { '.claude.json': '{"theme": "dark",' });
    const before = fs.readFileSync(img);
    const writer = new OfflineDiskWriter({ stagingDir: path.join(dir, 'staging') });
    const err = await writeCredentialOffline({
      writer,
      image: img,
      payload: claude(JSON.stringify({ claudeAiOauth: { refreshToken: TOKEN } }), '{"userID":"u1"}'),
      vmStopped: () => true,
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(FiredeckError);
    expect((err as FiredeckError).kind).toBe('invalid_state');
    expect((err as FiredeckError).message).toBe(
      '/home/firedeck/.claude.json in the VM is not a JSON object; nothing was written',
    );
    expect(JSON.stringify((err as FiredeckError).toJSON())).not.toContain('dark');
    expect(fs.readFileSync(img).equals(before)).toBe(true);
  });

  it('refuses a running VM’s disk and a payload outside the table before touching the image', async () => {
    const dir = tempDir();
    const img = makeImage(dir, {});
    const before = fs.readFileSync(img);
    const writer = new OfflineDiskWriter({ stagingDir: path.join(dir, 'staging') });
    const running = await writeCredentialOffline({
      writer,
      image: img,
      payload: claude(JSON.stringify({ claudeAiOauth: {} }), null),
      vmStopped: () => false,
    }).catch((e: unknown) => e);
    expect((running as FiredeckError).kind).toBe('invalid_state');
    let asked = false;
    const outside = await writeCredentialOffline({
      writer,
      image: img,
      payload: { provider: 'claude_code', files: [{ path: '.bashrc', content: Secret.from('{}'), mode: 0o600 }] },
      vmStopped: () => (asked = true),
    }).catch((e: unknown) => e);
    expect((outside as FiredeckError).kind).toBe('invalid_params');
    expect(asked).toBe(false);
    expect(fs.readFileSync(img).equals(before)).toBe(true);
  });
});

describe('writeCredentialOnline', () => {
  it('refuses a payload outside the table before it connects (the target has no key and no address)', async () => {
    const err = await writeCredentialOnline({
      target: { vmName: 'nowhere', address: '192.0.2.1', hostKey: 'ssh-ed25519 AAAA', keyDir: '/nonexistent' },
      payload: { provider: 'codex', files: [{ path: '.codex/config.toml', content: Secret.from('{}'), mode: 0o600 }] },
    }).catch((e: unknown) => e);
    expect((err as FiredeckError).kind).toBe('invalid_params');
  });

  it('is cancelled at once by an aborted signal, with a typed error', async () => {
    const abort = new AbortController();
    abort.abort();
    const err = await writeCredentialOnline({
      target: { vmName: 'nowhere', address: '192.0.2.1', hostKey: 'ssh-ed25519 AAAA', keyDir: '/nonexistent' },
      payload: {
        provider: 'codex',
        files: [{ path: '.codex/auth.json', content: Secret.from('{"tokens":{}}'), mode: 0o600 }],
      },
      signal: abort.signal,
    }).catch((e: unknown) => e);
    expect((err as FiredeckError).kind).toBe('cancelled');
  });
});
