import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OfflineDiskWriter } from '../../host-daemon/src/credentials/offlineDisk';
import { Secret } from '../../host-daemon/src/credentials/secret';
import {
  writeCredentialOffline,
  writeCredentialOnline,
  type CredentialPayload,
  type TransferResult,
} from '../../host-daemon/src/credentials/transfer';
import type { GuestSshTarget } from '../../host-daemon/src/guest/guestSsh';
import { FiredeckError, type ErrorKind } from '../../src/shared/errors';
import { guestSshArgs, startQemuGuest, type QemuGuest } from '../rig/qemu';
import { ensureTestImage, type TestImage } from '../rig/testImage';
import { makeTempDir, requireTool } from '../rig/tmp';

// One QEMU guest from the `test` image, booted from a copy of its rootfs into which the offline path wrote first;
// the online cases then write into the same running guest over its sshd. Every check of the guest's files goes
// through OpenSSH's client in a session of its own, not through the code under test.

const HOME = '/home/firedeck';
const SELFTEST = '.firedeck-selftest/credentials.json';

/** A stand-in for the browser image's login program (issue 12, item 7): `status` checks the credential's shape. */
const SELFTEST_STATUS = `#!/bin/sh
f="$HOME/${SELFTEST}"
[ "$1" = status ] || exit 2
if jq -e '(.refresh_token | startswith("revoked")) | not' "$f" >/dev/null 2>&1; then echo "logged in"; exit 0; fi
echo "the provider refused the refresh token in:"
cat "$f"
exit 1
`;

let image: TestImage;
let work: string;
let keyDir: string;
let disk: string;
let guest: QemuGuest | undefined;
let target: GuestSshTarget;
let writer: OfflineDiskWriter;
let offline: TransferResult;
const offlineToken = `rt-offline-${randomBytes(12).toString('hex')}`;

function sh(file: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) =>
    execFile(file, args, { maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) =>
      err ? reject(new Error(`${file} ${args.join(' ')}: ${stderr || err.message}`)) : resolve(stdout),
    ),
  );
}

/** A command in the guest as firedeck, over OpenSSH (a separate session from the transfer's). */
function guestRun(command: string): Promise<string> {
  return sh('/usr/bin/ssh', [
    ...guestSshArgs(path.join(keyDir, 'guest_ed25519'), 'ConnectTimeout=20'),
    `firedeck@${guest!.network!.guestIp}`,
    command,
  ]);
}

/** sha256, mode, owner and group of a file in the guest; null when it does not exist. */
async function guestStat(p: string): Promise<{ sha256: string; mode: string; owner: string } | null> {
  const out = await guestRun(`if [ -e ${p} ]; then sha256sum < ${p}; stat -c '%a %U:%G' -- ${p}; else echo absent; fi`);
  if (out.trim() === 'absent') return null;
  const [hash, stat] = out.trim().split('\n');
  const [mode, owner] = stat!.split(' ');
  return { sha256: hash!.split(' ')[0]!, mode: mode!, owner: owner! };
}

function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

function selftestCredential(refreshToken: string, padding = 0): string {
  return JSON.stringify({
    issuer: 'http://10.213.0.1:4000',
    access_token: `at-${randomBytes(16).toString('hex')}`,
    refresh_token: refreshToken,
    id_token: 'eyJhbGciOiJub25lIn0.e30.', // secret-scan: allow an unsigned JWT, {"alg":"none"}.{}, holds nothing
    obtained_at: new Date().toISOString(),
    ...(padding > 0 ? { padding: randomBytes(padding / 2).toString('hex') } : {}),
  });
}

function selftestPayload(text: string): CredentialPayload {
  return { provider: 'selftest', files: [{ path: SELFTEST, content: Secret.from(text), mode: 0o600 }] };
}

async function refusal(p: Promise<unknown>, kind: ErrorKind, ...secrets: string[]): Promise<FiredeckError> {
  const err = await p.then(
    () => {
      throw new Error(`expected a ${kind} error`);
    },
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(FiredeckError);
  const fe = err as FiredeckError;
  expect(fe.kind, fe.message).toBe(kind);
  for (const s of secrets) expect(JSON.stringify({ ...fe.toJSON(), stack: fe.stack })).not.toContain(s);
  return fe;
}

beforeAll(async () => {
  requireTool('/usr/bin/ssh', 'openssh-client');
  requireTool('/usr/bin/ssh-keygen', 'openssh-client');
  requireTool('/usr/sbin/debugfs', 'e2fsprogs');
  image = await ensureTestImage();
  work = makeTempDir('transfer');
  keyDir = path.join(work, 'keys');
  fs.mkdirSync(keyDir, { mode: 0o700 });
  await sh('/usr/bin/ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', path.join(keyDir, 'guest_ed25519')]);
  disk = path.join(work, 'rootfs.ext4');
  await sh('/usr/bin/cp', ['--reflink=auto', '--sparse=always', image.rootfsPath, disk]);
  writer = new OfflineDiskWriter({ stagingDir: path.join(work, 'staging') });

  // Offline, while no VM uses the copy: the credential and a companion of Claude Code.
  offline = await writeCredentialOffline({
    writer,
    image: disk,
    vmStopped: () => guest === undefined,
    payload: {
      provider: 'claude_code',
      files: [
        {
          path: '.claude/.credentials.json',
          content: Secret.from(JSON.stringify({ claudeAiOauth: { accessToken: 'at-x', refreshToken: offlineToken } })),
          mode: 0o600,
        },
        { path: '.claude.json', content: Secret.from('{"hasCompletedOnboarding":true}'), mode: 0o644 },
      ],
    },
  });

  const t0 = Date.now();
  guest = await startQemuGuest({
    image: { kernelPath: image.kernelPath, initrdPath: image.initrdPath, rootfsPath: disk },
    network: true,
    hostname: 'transfer-guest',
    config: {
      vmId: 'vm-7a4f00d1',
      hostname: 'transfer-guest',
      kind: 'cli',
      authorizedKeys: [fs.readFileSync(path.join(keyDir, 'guest_ed25519.pub'), 'utf8').trim()],
    },
  });
  await guest.waitForConsole(/^FIREDECK-READY sshd\r?$/m, 180_000);
  const hostKey = /^FIREDECK-HOSTKEY (ssh-ed25519 [A-Za-z0-9+/=]+)\r?$/m.exec(guest.consoleText())![1]!;
  console.log(`guest booted from the offline-written disk in ${Date.now() - t0} ms`);
  target = { vmName: 'transfer-guest', address: guest.network!.guestIp, hostKey, keyDir };
  // As root on the serial console (firedeck cannot write /usr/local/bin).
  guest.writeConsole(
    `echo ${Buffer.from(SELFTEST_STATUS).toString('base64')} | base64 -d > /usr/local/bin/firedeck-selftest-login && ` +
      `chmod 755 /usr/local/bin/firedeck-selftest-login && echo "standin-$((40 + 2))"\n`,
  );
  await guest.waitForConsole(/standin-42/, 30_000);
});

afterAll(async () => {
  await guest?.stop();
  if (work) fs.rmSync(work, { recursive: true, force: true });
});

describe('credential transfer into a stopped CLI VM (offline, debugfs)', () => {
  it('wrote files that the booted guest reads back with the same sha256, 0600, owned by firedeck', async () => {
    expect(offline.mode).toBe('offline');
    expect(offline.verifiedBy).toBe('hash');
    expect(offline.files.map((f) => f.path)).toEqual([`${HOME}/.claude/.credentials.json`, `${HOME}/.claude.json`]);
    for (const f of offline.files) {
      expect(await guestStat(f.path)).toEqual({ sha256: f.sha256, mode: '600', owner: 'firedeck:firedeck' });
    }
    expect((await guestRun(`stat -c '%a %U' ${HOME}/.claude`)).trim()).toBe('700 firedeck');
    expect(await guestRun(`jq -r .claudeAiOauth.refreshToken ${HOME}/.claude/.credentials.json`)).toBe(
      `${offlineToken}\n`,
    );
  });

  it('refuses to write into the disk of the running VM', async () => {
    const payload = (): CredentialPayload => ({
      provider: 'claude_code',
      files: [
        {
          path: '.claude/.credentials.json',
          content: Secret.from(JSON.stringify({ claudeAiOauth: { refreshToken: 'rt-never' } })),
          mode: 0o600,
        },
      ],
    });
    await refusal(
      writeCredentialOffline({ writer, image: disk, payload: payload(), vmStopped: () => false }),
      'invalid_state',
    );
    // Even when the daemon's word is wrong, the writer sees QEMU holding the disk.
    await refusal(
      writeCredentialOffline({ writer, image: disk, payload: payload(), vmStopped: () => true }),
      'conflict',
    );
    expect((await guestStat(offline.files[0]!.path))!.sha256).toBe(offline.files[0]!.sha256);
  });
});

describe('credential transfer into a running CLI VM (online, sshd)', () => {
  it('refuses a path outside the provider table before connecting', async () => {
    const nowhere: GuestSshTarget = { ...target, address: '192.0.2.1', keyDir: path.join(work, 'no-keys') };
    for (const p of ['.ssh/authorized_keys', `${HOME}/${SELFTEST}`, `.firedeck-selftest/../${SELFTEST}`]) {
      const err = await refusal(
        writeCredentialOnline({
          target: nowhere,
          payload: { provider: 'selftest', files: [{ path: p, content: Secret.from('{}'), mode: 0o600 }] },
        }),
        'invalid_params',
      );
      expect(err.message).toMatch(/not one of its files/);
    }
  });

  it('writes, then fails with a typed error when the VM has no status-check program (the test image has no codex)', async () => {
    const token = `rt-${randomBytes(12).toString('hex')}`;
    const text = JSON.stringify({ tokens: { refresh_token: token }, last_refresh: new Date().toISOString() });
    const err = await refusal(
      writeCredentialOnline({
        target,
        payload: { provider: 'codex', files: [{ path: '.codex/auth.json', content: Secret.from(text), mode: 0o600 }] },
      }),
      'invalid_state',
      token,
    );
    expect(err.message).toMatch(/status check `codex .* login status` failed .*exit 127/);
    expect(err.hint).toMatch(/cli image/);
    expect((await guestStat(`${HOME}/.codex/auth.json`))!.sha256).toBe(sha256(text));
  });

  it('writes the credential over sshd: hash read back in the VM, 0600, owner firedeck, dir 0700, status check run', async () => {
    const text = selftestCredential(`rt-${randomBytes(12).toString('hex')}`);
    const t0 = Date.now();
    const result = await writeCredentialOnline({ target, payload: selftestPayload(text) });
    console.log(`online transfer with status check: ${Date.now() - t0} ms`);
    expect(result).toEqual({
      mode: 'online',
      files: [{ path: `${HOME}/${SELFTEST}`, sha256: sha256(text) }],
      verifiedBy: 'status-check',
    });
    expect(await guestStat(`${HOME}/${SELFTEST}`)).toEqual({
      sha256: sha256(text),
      mode: '600',
      owner: 'firedeck:firedeck',
    });
    expect((await guestRun(`stat -c '%a %U:%G' ${HOME}/.firedeck-selftest`)).trim()).toBe('700 firedeck:firedeck');
    expect((await guestRun(`ls -A ${HOME}/.firedeck-selftest`)).trim()).toBe('credentials.json');
  });

  it('fails with a typed error when the status check refuses, its output scrubbed of the credential', async () => {
    const token = `revoked-${randomBytes(12).toString('hex')}`;
    const text = selftestCredential(token);
    const err = await refusal(
      writeCredentialOnline({ target, payload: selftestPayload(text) }),
      'invalid_state',
      token,
      text,
    );
    expect(err.message).toMatch(/status check `firedeck-selftest-login status` failed .*exit 1\b/);
    const output = String(err.details!.output);
    expect(output).toMatch(/^the provider refused the refresh token in:\n/);
    expect(output).toContain('[redacted]');
    expect(output).not.toContain(token);
  });

  it('merges companions: an existing key stays, the captured ones are added or win (statusCheck null → hash)', async () => {
    await guestRun(
      `mkdir -p ${HOME}/.gemini && printf '%s' '{"theme":"GitHub","security":{"auth":{"selectedType":"gemini-api-key"}}}' > ${HOME}/.gemini/settings.json && rm -f ${HOME}/.gemini/google_accounts.json`,
    );
    const cred = JSON.stringify({ access_token: 'ya29.x', refresh_token: `1//${randomBytes(12).toString('hex')}` });
    const settings = JSON.stringify({ security: { auth: { selectedType: 'oauth-personal' } } });
    const accounts = JSON.stringify({ active: 'user@example.org', old: [] });
    const result = await writeCredentialOnline({
      target,
      payload: {
        provider: 'gemini_cli',
        files: [
          { path: '.gemini/oauth_creds.json', content: Secret.from(cred), mode: 0o600 },
          { path: '.gemini/settings.json', content: Secret.from(settings), mode: 0o644 },
          { path: '.gemini/google_accounts.json', content: Secret.from(accounts), mode: 0o644 },
        ],
      },
    });
    expect(result.verifiedBy).toBe('hash');
    expect(JSON.parse(await guestRun(`cat ${HOME}/.gemini/settings.json`))).toEqual({
      theme: 'GitHub',
      security: { auth: { selectedType: 'oauth-personal' } },
    });
    expect(await guestRun(`cat ${HOME}/.gemini/google_accounts.json`)).toBe(accounts);
    for (const f of result.files) {
      expect(await guestStat(f.path)).toEqual({ sha256: f.sha256, mode: '600', owner: 'firedeck:firedeck' });
    }
    expect(result.files[0]!.sha256).toBe(sha256(cred));
  });

  it('refuses an unparsable companion in the VM with a typed error and writes nothing', async () => {
    const broken = '{"active": "user@example.org",';
    await guestRun(`printf '%s' '${broken}' > ${HOME}/.gemini/google_accounts.json`);
    const before = await guestStat(`${HOME}/.gemini/oauth_creds.json`);
    const token = `1//${randomBytes(12).toString('hex')}`;
    const err = await refusal(
      writeCredentialOnline({
        target,
        payload: {
          provider: 'gemini_cli',
          files: [
            {
              path: '.gemini/oauth_creds.json',
              content: Secret.from(JSON.stringify({ access_token: 'ya29.y', refresh_token: token })),
              mode: 0o600,
            },
            { path: '.gemini/google_accounts.json', content: Secret.from('{"active":"b@example.org"}'), mode: 0o600 },
          ],
        },
      }),
      'invalid_state',
      token,
      'user@example.org',
    );
    expect(err.message).toBe(
      `${HOME}/.gemini/google_accounts.json in the VM is not a JSON object; nothing was written`,
    );
    expect(await guestRun(`cat ${HOME}/.gemini/google_accounts.json`)).toBe(broken);
    expect(await guestStat(`${HOME}/.gemini/oauth_creds.json`)).toEqual(before);
  });

  it('does not overwrite a companion that the VM changes between the read and the rename (conflict)', async () => {
    const accounts = `${HOME}/.gemini/google_accounts.json`;
    await guestRun(`printf '%s' '{"active":"a@example.org"}' > ${accounts}`);
    const err = await refusal(
      writeCredentialOnline({
        target,
        payload: {
          provider: 'gemini_cli',
          files: [
            {
              path: '.gemini/oauth_creds.json',
              content: Secret.from(JSON.stringify({ access_token: 'ya29.z', refresh_token: '1//z' })),
              mode: 0o600,
            },
            { path: '.gemini/google_accounts.json', content: Secret.from('{"active":"b@example.org"}'), mode: 0o600 },
          ],
        },
        onPhase: async (phase, guestPath) => {
          // The CLI in the VM rewrites the file while the merged copy is on its way.
          if (phase === 'streaming' && guestPath === accounts) {
            await guestRun(`printf '%s' '{"active":"c@example.org"}' > ${accounts}`);
          }
        },
      }),
      'conflict',
    );
    expect(err.message).toMatch(/changed in VM .* while it was merged/);
    expect(await guestRun(`cat ${accounts}`)).toBe('{"active":"c@example.org"}');
    expect((await guestRun(`ls -A ${HOME}/.gemini`)).trim().split('\n').sort()).toEqual([
      'google_accounts.json',
      'oauth_creds.json',
      'settings.json',
    ]);
  });

  it('leaves the old file (never a part) when the connection is destroyed mid-stream; the next write cleans up', async () => {
    const file = `${HOME}/${SELFTEST}`;
    const oldText = selftestCredential(`rt-old-${randomBytes(8).toString('hex')}`);
    await writeCredentialOnline({ target, payload: selftestPayload(oldText) });
    const bigText = selftestCredential(`rt-big-${randomBytes(8).toString('hex')}`, 1000 * 1024);
    const abort = new AbortController();
    let seenInGuest = -1;
    const err = await refusal(
      writeCredentialOnline({
        target,
        payload: selftestPayload(bigText),
        signal: abort.signal,
        onPhase: async (phase) => {
          if (phase !== 'streaming') return;
          // Half the bytes are handed over: wait until the guest holds some of them in its temp, then cut.
          const size = await guestRun(
            `i=0; while [ $i -lt 400 ]; do for t in ${HOME}/.firedeck-selftest/.credentials.json.fdt-*; do ` +
              `[ -s "$t" ] && { stat -c %s -- "$t"; exit 0; }; done; sleep 0.05; i=$((i + 1)); done; echo 0`,
          );
          seenInGuest = Number(size.trim());
          abort.abort();
        },
      }),
      'cancelled',
    );
    expect(err.message).toMatch(/cancelled/);
    console.log(`temp held ${seenInGuest} of ${bigText.length} bytes when the connection was destroyed`);
    expect(seenInGuest).toBeGreaterThan(0);
    expect(seenInGuest).toBeLessThan(bigText.length);
    // The guest's script sees an EOF and runs on: once its temp is gone (removed or renamed), the target must be
    // the old file, whole.
    const left = await guestRun(
      `i=0; while [ $i -lt 400 ]; do set -- ${HOME}/.firedeck-selftest/.credentials.json.fdt-*; ` +
        `[ -e "$1" ] || { echo gone; exit 0; }; sleep 0.05; i=$((i + 1)); done; ls -A ${HOME}/.firedeck-selftest`,
    );
    expect(left.trim()).toBe('gone');
    expect(await guestStat(file)).toEqual({ sha256: sha256(oldText), mode: '600', owner: 'firedeck:firedeck' });
    const newText = selftestCredential(`rt-new-${randomBytes(8).toString('hex')}`);
    await writeCredentialOnline({ target, payload: selftestPayload(newText) });
    expect((await guestStat(file))!.sha256).toBe(sha256(newText));
    expect((await guestRun(`ls -A ${HOME}/.firedeck-selftest`)).trim()).toBe('credentials.json');
  });

  it('writes a file as large as a capture may be (1 MiB) whole', async () => {
    const text = selftestCredential(`rt-${randomBytes(8).toString('hex')}`, 1024 * 1024 - 400);
    expect(Buffer.byteLength(text)).toBeLessThanOrEqual(1024 * 1024);
    const result = await writeCredentialOnline({ target, payload: selftestPayload(text) });
    expect((await guestStat(`${HOME}/${SELFTEST}`))!.sha256).toBe(sha256(text));
    expect(result.files[0]!.sha256).toBe(sha256(text));
  });
});
