import fs from 'node:fs';
import path from 'node:path';
import { Client, type ClientChannel, type PseudoTtyOptions } from 'ssh2';
import { FiredeckError } from '../../../src/shared/errors';

/** The user the CLI image's sshd lets the host's guest key in as. */
export const GUEST_USER = 'firedeck';
export const GUEST_SSH_PORT = 22;

/** The host's private key for guests, `${keyDir}/guest_ed25519` (written 0600 by ensureGuestKey). */
export function guestKeyPath(keyDir: string): string {
  return path.join(keyDir, 'guest_ed25519');
}

export interface GuestSshTarget {
  vmName: string;
  address: string;
  /** The VM's pinned host key as it announced it on its console: `ssh-ed25519 AAAA…`. */
  hostKey: string;
  keyDir: string;
  timeoutMs?: number;
}

/**
 * An SSH connection to a guest's sshd as {@link GUEST_USER}, with the host-held key and only the pinned host key
 * trusted (any other key fails with `host_key_mismatch` before authenticating).
 */
export function connectGuest(target: GuestSshTarget): Promise<Client> {
  const m = /^([a-z0-9-]+) ([A-Za-z0-9+/]+={0,3})$/.exec(target.hostKey);
  if (!m || !/^[0-9.]+$/.test(target.address)) {
    return Promise.reject(new FiredeckError('invalid_state', 'The VM record holds a malformed address or host key'));
  }
  const pinned = Buffer.from(m[2]!, 'base64');
  let privateKey: Buffer;
  try {
    privateKey = fs.readFileSync(guestKeyPath(target.keyDir));
  } catch (err) {
    return Promise.reject(
      new FiredeckError('unavailable', `The host's guest key is missing: ${(err as Error).message}`),
    );
  }
  return new Promise((resolve, reject) => {
    const client = new Client();
    let hostKeyRefused = false;
    client.once('ready', () => resolve(client));
    client.once('error', (err: Error) => {
      client.end();
      reject(
        hostKeyRefused
          ? new FiredeckError(
              'host_key_mismatch',
              `VM ${target.vmName} presented another SSH host key than it announced`,
              {
                hint: 'Its console shows the key it announced (FIREDECK-HOSTKEY); recreate the VM if it changed.',
              },
            )
          : new FiredeckError(
              'unavailable',
              `Cannot reach the sshd of ${target.vmName} at ${target.address}: ${err.message}`,
            ),
      );
    });
    client.connect({
      host: target.address,
      port: GUEST_SSH_PORT,
      username: GUEST_USER,
      privateKey,
      readyTimeout: target.timeoutMs ?? 20_000,
      algorithms: { serverHostKey: [m[1]! as 'ssh-ed25519'] },
      hostVerifier: (key: Buffer) => {
        const ok = key.equals(pinned);
        hostKeyRefused = !ok;
        return ok;
      },
    });
  });
}

/** A login shell (command null) or a command, on a pty of the given size or on pipes. */
export function openGuestSession(
  client: Client,
  command: string | null,
  pty: (PseudoTtyOptions & { term: string }) | null,
): Promise<ClientChannel> {
  return new Promise((resolve, reject) => {
    const done = (err: Error | undefined, channel: ClientChannel): void => {
      if (err) reject(new FiredeckError('unavailable', `The guest's sshd refused the session: ${err.message}`));
      else resolve(channel);
    };
    if (command === null) client.shell(pty ?? false, done);
    else client.exec(command, pty ? { pty } : {}, done);
  });
}
