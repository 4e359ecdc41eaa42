import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { z } from 'zod';
import { FiredeckError } from '../../../src/shared/errors';
import type { VmKind } from '../../../src/shared/protocol/vm';

const run = promisify(execFile);

/** `/config.json` on the FDCONFIG drive, as the guest contract defines it. */
export const GuestConfig = z
  .object({
    vmId: z.string(),
    hostname: z.string(),
    kind: z.enum(['cli', 'browser']),
    sessionId: z.string().optional(),
    proxy: z
      .object({ http: z.string().optional(), https: z.string().optional(), noProxy: z.string().optional() })
      .optional(),
    authorizedKeys: z.array(z.string()).optional(),
    vncPassword: z.string().optional(),
    agentToken: z.string().optional(),
    /** Browser VMs: the OpenID provider the `selftest` login program uses (the oauth agent passes it on). */
    selftest: z
      .object({ issuer: z.string().url(), clientId: z.string().regex(/^[A-Za-z0-9._-]{1,128}$/) })
      .strict()
      .optional(),
  })
  .strict();
export type GuestConfig = z.infer<typeof GuestConfig>;

export const CONFIG_DRIVE_LABEL = 'FDCONFIG';

/** The proxy browser VMs use, as the operator set it (URLs may carry a password: config drive only). */
export interface BrowserProxy {
  http: string | null;
  https: string | null;
  noProxy: readonly string[];
}

export interface GuestNetwork {
  address: string;
  gateway: string;
  netmask: string;
}

/** The kernel command line of the guest contract. */
export function kernelCommandLine(vmId: string, hostname: string, net: GuestNetwork | null): string {
  const parts = ['console=ttyS0', 'root=/dev/vda', 'rw', 'panic=-1'];
  if (net) parts.push(`ip=${net.address}::${net.gateway}:${net.netmask}:${hostname}:eth0:off`);
  parts.push(`firedeck.vm=${vmId}`);
  return parts.join(' ');
}

/**
 * Builds the read-only config drive with `mkfs.ext4 -d` from a staged directory (no mount, no loop device).
 * Written to a temp name and renamed, so a half-built drive never sits at `target`.
 */
export async function buildConfigDrive(target: string, config: GuestConfig): Promise<void> {
  const checked = GuestConfig.parse(config);
  // Staged beside the drive (the VM's own, root-only dir), not in the shared /tmp: the file holds VM secrets.
  const stage = fs.mkdtempSync(path.join(path.dirname(target), '.config-'));
  const tmp = `${target}.tmp`;
  try {
    // mkfs.ext4 -d copies each file's mode and owner into the drive, and the guest mounts it as it is: the file
    // (VNC password, agent token) is 0600 root:root there. The drive's root directory does not take the stage's
    // mode (it is 0755); root_owner makes it root's whoever runs mkfs.
    const file = path.join(stage, 'config.json');
    fs.writeFileSync(file, JSON.stringify(checked, null, 2) + '\n', { mode: 0o600 });
    fs.chmodSync(file, 0o600);
    if (process.getuid?.() === 0) fs.chownSync(file, 0, 0);
    fs.rmSync(tmp, { force: true });
    await run(
      'mkfs.ext4',
      ['-q', '-F', '-L', CONFIG_DRIVE_LABEL, '-d', stage, '-E', 'root_owner=0:0', '-O', '^has_journal', tmp, '2M'],
      { timeout: 30_000 },
    );
    fs.chmodSync(tmp, 0o600);
    fs.renameSync(tmp, target);
  } catch (err) {
    fs.rmSync(tmp, { force: true });
    const stderr = (err as { stderr?: string }).stderr?.trim();
    throw new FiredeckError('internal', `Could not build the config drive: ${stderr || String(err)}`, {
      hint: 'mkfs.ext4 comes with e2fsprogs (apt-get install e2fsprogs).',
    });
  } finally {
    fs.rmSync(stage, { recursive: true, force: true });
  }
}

/**
 * The key pair with which the host (and only the host) reaches CLI VMs' sshd; created once, private half 0600.
 * Returns the public key line.
 */
export async function ensureGuestKey(keyDir: string): Promise<{ privateKeyPath: string; publicKey: string }> {
  fs.mkdirSync(keyDir, { recursive: true, mode: 0o700 });
  const privateKeyPath = path.join(keyDir, 'guest_ed25519');
  if (!fs.existsSync(privateKeyPath)) {
    // Generated under a unique name and hard-linked into place: link() fails if another create won the race,
    // so there is only ever one private key.
    const tmp = path.join(keyDir, `.guest_ed25519.${process.pid}.${randomBytes(4).toString('hex')}`);
    try {
      await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'firedeckd-guest', '-f', tmp], {
        timeout: 30_000,
      });
      fs.linkSync(tmp, privateKeyPath);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    } finally {
      fs.rmSync(tmp, { force: true });
      fs.rmSync(`${tmp}.pub`, { force: true });
    }
  }
  fs.chmodSync(privateKeyPath, 0o600);
  // The public half is derived from the private key, so the two always match.
  const { stdout } = await run('ssh-keygen', ['-y', '-f', privateKeyPath], { timeout: 30_000 });
  const publicKey = stdout.trim();
  fs.writeFileSync(`${privateKeyPath}.pub`, publicKey + '\n', { mode: 0o644 });
  return { privateKeyPath, publicKey };
}

export function guestConfigFor(opts: {
  vmId: string;
  hostname: string;
  kind: VmKind;
  sessionId: string | null;
  authorizedKeys: string[];
  secrets?: { vncPassword?: string; agentToken?: string };
  selftest?: { issuer: string; clientId: string };
  /** Browser VMs only: their Firefox, oauth agent and login go through it (guest-setup writes proxy.env). */
  proxy?: BrowserProxy;
}): GuestConfig {
  const cfg: GuestConfig = { vmId: opts.vmId, hostname: opts.hostname, kind: opts.kind };
  if (opts.sessionId !== null) cfg.sessionId = opts.sessionId;
  if (opts.authorizedKeys.length > 0) cfg.authorizedKeys = opts.authorizedKeys;
  if (opts.kind === 'browser' && opts.secrets) {
    if (opts.secrets.vncPassword !== undefined) cfg.vncPassword = opts.secrets.vncPassword;
    if (opts.secrets.agentToken !== undefined) cfg.agentToken = opts.secrets.agentToken;
  }
  if (opts.kind === 'browser' && opts.selftest) cfg.selftest = opts.selftest;
  if (opts.kind === 'browser' && opts.proxy) {
    const { http, https, noProxy } = opts.proxy;
    const proxy: NonNullable<GuestConfig['proxy']> = {};
    if (http !== null) proxy.http = http;
    if (https !== null) proxy.https = https;
    if (noProxy.length > 0) proxy.noProxy = noProxy.join(',');
    if (Object.keys(proxy).length > 0) cfg.proxy = proxy;
  }
  return cfg;
}
