import crypto from 'node:crypto';
import { FiredeckError } from '../../shared/errors';

/** `SHA256:<base64 without padding>` of an SSH public key blob, as OpenSSH prints it. */
export function fingerprintOf(keyBlob: Buffer): string {
  return 'SHA256:' + crypto.createHash('sha256').update(keyBlob).digest('base64').replace(/=+$/, '');
}

/** The key type from the blob's first field (`ssh-ed25519`, `ecdsa-sha2-nistp256`, …). */
export function keyTypeOf(keyBlob: Buffer): string {
  if (keyBlob.length < 4) return 'unknown';
  const len = keyBlob.readUInt32BE(0);
  if (len > 64 || keyBlob.length < 4 + len) return 'unknown';
  return keyBlob.subarray(4, 4 + len).toString('latin1');
}

/** A host key as the local store pins it: the full blob, not just its hash, so a mismatch is exact. */
export interface PinnedHostKey {
  /** base64 of the SSH wire-format public key. */
  key: string;
  fingerprint: string;
}

export type HostKeyVerdict =
  | { verdict: 'trusted' }
  | { verdict: 'unknown'; presented: PinnedHostKey }
  | { verdict: 'mismatch'; presented: PinnedHostKey; pinned: PinnedHostKey };

/** Trust on first use: no pin → unknown (the operator decides), same key → trusted, another key → mismatch. */
export function checkHostKey(pinned: PinnedHostKey | null, keyBlob: Buffer): HostKeyVerdict {
  const presented: PinnedHostKey = { key: keyBlob.toString('base64'), fingerprint: fingerprintOf(keyBlob) };
  if (pinned === null) return { verdict: 'unknown', presented };
  const pinnedBlob = Buffer.from(pinned.key, 'base64');
  if (pinnedBlob.length === keyBlob.length && crypto.timingSafeEqual(pinnedBlob, keyBlob))
    return { verdict: 'trusted' };
  return { verdict: 'mismatch', presented, pinned };
}

/** The error a refused host key becomes; its details let the UI show both fingerprints. */
export function hostKeyError(verdict: Exclude<HostKeyVerdict, { verdict: 'trusted' }>, where: string): FiredeckError {
  if (verdict.verdict === 'unknown') {
    return new FiredeckError('host_key_unknown', `The host key of ${where} is not trusted yet`, {
      hint: `Compare ${verdict.presented.fingerprint} with the host's own (ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub) and trust it if they match.`,
      details: {
        fingerprint: verdict.presented.fingerprint,
        keyType: keyTypeOf(Buffer.from(verdict.presented.key, 'base64')),
      },
    });
  }
  return new FiredeckError(
    'host_key_mismatch',
    `host key changed: ${where} presented ${verdict.presented.fingerprint}, but ${verdict.pinned.fingerprint} is pinned`,
    {
      hint: 'This can be an attack. Verify the host key out of band; if the host was reinstalled, remove the host and add it again.',
      details: { fingerprint: verdict.presented.fingerprint, pinnedFingerprint: verdict.pinned.fingerprint },
    },
  );
}
