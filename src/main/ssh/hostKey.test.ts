import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { checkHostKey, fingerprintOf, hostKeyError, keyTypeOf } from './hostKey';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'firedeck-hostkey-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

function newKey(name: string): { blob: Buffer; opensshFingerprint: string } {
  const file = path.join(dir, name);
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', file]);
  const blob = Buffer.from(fs.readFileSync(`${file}.pub`, 'utf8').split(' ')[1]!, 'base64');
  const opensshFingerprint = execFileSync('ssh-keygen', ['-lf', `${file}.pub`])
    .toString()
    .split(' ')[1]!;
  return { blob, opensshFingerprint };
}

describe('host key pinning', () => {
  const a = newKey('a');
  const b = newKey('b');

  it('computes the fingerprint exactly as OpenSSH prints it', () => {
    expect(fingerprintOf(a.blob)).toBe(a.opensshFingerprint);
    expect(keyTypeOf(a.blob)).toBe('ssh-ed25519');
  });

  it('treats an unpinned host as unknown and reports the presented key', () => {
    const v = checkHostKey(null, a.blob);
    expect(v.verdict).toBe('unknown');
    if (v.verdict !== 'unknown') throw new Error('unreachable');
    expect(v.presented.fingerprint).toBe(a.opensshFingerprint);
    expect(Buffer.from(v.presented.key, 'base64').equals(a.blob)).toBe(true);
    const err = hostKeyError(v, 'root@h:22');
    expect(err.kind).toBe('host_key_unknown');
    expect(err.details?.fingerprint).toBe(a.opensshFingerprint);
  });

  it('trusts exactly the pinned key and refuses any other as a change', () => {
    const pinned = { key: a.blob.toString('base64'), fingerprint: fingerprintOf(a.blob) };
    expect(checkHostKey(pinned, a.blob).verdict).toBe('trusted');
    const v = checkHostKey(pinned, b.blob);
    expect(v.verdict).toBe('mismatch');
    if (v.verdict !== 'mismatch') throw new Error('unreachable');
    const err = hostKeyError(v, 'root@h:22');
    expect(err.kind).toBe('host_key_mismatch');
    expect(err.message).toMatch(/^host key changed: /);
    expect(err.message).toContain(b.opensshFingerprint);
    expect(err.message).toContain(a.opensshFingerprint);
  });

  it('compares whole keys, not just a prefix', () => {
    const pinned = { key: a.blob.subarray(0, a.blob.length - 1).toString('base64'), fingerprint: 'x' };
    expect(checkHostKey(pinned, a.blob).verdict).toBe('mismatch');
  });
});
