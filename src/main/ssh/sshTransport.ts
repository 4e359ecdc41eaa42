import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import ssh2, { Client, type ClientChannel, type ConnectConfig } from 'ssh2';
import { FiredeckError } from '../../shared/errors';
import type { HostAuth } from '../../shared/app/contract';
import { checkHostKey, hostKeyError, type HostKeyVerdict, type PinnedHostKey } from './hostKey';
import type { ExecChannel, ExecOptions, ExitStatus, Transport } from './transport';

export interface SshTarget {
  address: string;
  port: number;
  user: string;
  auth: HostAuth;
  /** The pinned host key; null means the first connect only learns the key and is refused. */
  pinned: PinnedHostKey | null;
  keepaliveIntervalMs?: number;
  keepaliveCountMax?: number;
  readyTimeoutMs?: number;
  /** Where the agent listens for `auth.type === 'agent'`; defaults to SSH_AUTH_SOCK. */
  agentSocket?: string | undefined;
}

/** What a refused host key looked like, so trust-on-first-use can pin exactly the key that was shown. */
export type RefusedHostKey = Exclude<HostKeyVerdict, { verdict: 'trusted' }>;

export class SshConnectError extends FiredeckError {
  constructor(
    base: FiredeckError,
    readonly refusedKey: RefusedHostKey | null,
  ) {
    super(base.kind, base.message, { hint: base.hint, details: base.details });
  }
}

/** One SSH connection (ssh2) to a host: host key checked before authentication, keepalives on. */
export class SshTransport implements Transport {
  readonly where: string;
  private readonly closeListeners = new Set<(error: FiredeckError | null) => void>();
  private closed = false;

  private constructor(
    private readonly client: Client,
    target: SshTarget,
  ) {
    this.where = `${target.user}@${target.address}:${target.port}`;
    client.on('error', (err) => this.finish(FiredeckError.from(err, 'disconnected')));
    client.on('close', () => this.finish(new FiredeckError('disconnected', `SSH connection to ${this.where} closed`)));
  }

  static connect(target: SshTarget): Promise<SshTransport> {
    const where = `${target.user}@${target.address}:${target.port}`;
    let refused: RefusedHostKey | null = null;
    const config: ConnectConfig = {
      host: target.address,
      port: target.port,
      username: target.user,
      keepaliveInterval: target.keepaliveIntervalMs ?? 10_000,
      keepaliveCountMax: target.keepaliveCountMax ?? 3,
      readyTimeout: target.readyTimeoutMs ?? 20_000,
      hostVerifier: (key: Buffer): boolean => {
        const verdict = checkHostKey(target.pinned, key);
        if (verdict.verdict === 'trusted') return true;
        refused = verdict;
        return false;
      },
    };
    try {
      Object.assign(config, authConfig(target));
    } catch (err) {
      return Promise.reject(FiredeckError.from(err, 'auth_failed'));
    }
    return new Promise((resolve, reject) => {
      const client = new Client();
      let settled = false;
      const onError = (err: Error & { level?: string }): void => {
        // ssh2 may report more than one error for one failed attempt (a handshake timeout, then the lost
        // socket): only the first one decides, the rest must still have a listener or they crash the process.
        if (settled) return;
        settled = true;
        client.removeListener('ready', onReady);
        client.destroy();
        if (refused) {
          reject(new SshConnectError(hostKeyError(refused, where), refused));
        } else if (err.level === 'client-authentication') {
          reject(
            new FiredeckError('auth_failed', `${where} refused the key`, {
              hint: 'Add the public key to ~/.ssh/authorized_keys of that user on the host, or pick another key.',
            }),
          );
        } else {
          reject(
            new FiredeckError('connection_failed', `Cannot connect to ${where}: ${err.message}`, {
              hint: 'Check the address and port, and that sshd runs on the host.',
            }),
          );
        }
      };
      const onReady = (): void => {
        if (settled) return;
        settled = true;
        client.removeListener('error', onError);
        resolve(new SshTransport(client, target));
      };
      client.on('error', onError);
      client.once('ready', onReady);
      client.connect(config);
    });
  }

  exec(command: string, options: ExecOptions = {}): Promise<ExecChannel> {
    if (this.closed) return Promise.reject(new FiredeckError('disconnected', `Not connected to ${this.where}`));
    return new Promise((resolve, reject) => {
      const opts = options.pty
        ? { pty: { cols: options.pty.cols, rows: options.pty.rows, term: options.pty.term ?? 'xterm-256color' } }
        : {};
      this.client.exec(command, opts, (err, channel) => {
        if (err) {
          reject(
            new FiredeckError('unavailable', `Cannot run ${command.split(' ')[0]} on ${this.where}: ${err.message}`),
          );
          return;
        }
        resolve(wrapChannel(channel));
      });
    });
  }

  onClose(listener: (error: FiredeckError | null) => void): () => void {
    this.closeListeners.add(listener);
    return () => this.closeListeners.delete(listener);
  }

  close(): void {
    this.finish(null);
    this.client.end();
  }

  private finish(error: FiredeckError | null): void {
    if (this.closed) return;
    this.closed = true;
    for (const l of this.closeListeners) l(error);
    this.closeListeners.clear();
  }
}

/** A key file path as the operator wrote it: `~/…` is in their home directory. */
export function keyFilePath(p: string, home: string = os.homedir()): string {
  if (p === '~') return home;
  if (p.startsWith('~/')) return path.join(home, p.slice(2));
  return p;
}

function authConfig(target: SshTarget): Partial<ConnectConfig> {
  if (target.auth.type === 'keyFile') {
    let privateKey: Buffer;
    try {
      privateKey = fs.readFileSync(keyFilePath(target.auth.path));
    } catch (err) {
      throw new FiredeckError(
        'auth_failed',
        `Cannot read the key file ${target.auth.path}: ${(err as Error).message}`,
        {
          hint: 'Pick a readable private key file (e.g. ~/.ssh/id_ed25519), or use the SSH agent.',
        },
      );
    }
    // Parsed here, so that a key ssh2 cannot use says why before any connection is made. (`utils` only on the
    // default export: Node's ESM view of this CommonJS module does not name it.)
    const parsed = ssh2.utils.parseKey(privateKey);
    if (parsed instanceof Error || !parsed.isPrivateKey()) {
      const reason = parsed instanceof Error ? parsed.message : 'a public key';
      if (/encrypted|passphrase/i.test(reason)) {
        throw new FiredeckError('auth_failed', `The key file ${target.auth.path} is protected by a passphrase`, {
          hint: `Add it to your SSH agent (ssh-add ${target.auth.path}) and choose "SSH agent" for this host.`,
        });
      }
      throw new FiredeckError('auth_failed', `The key file ${target.auth.path} is not a usable private key`, {
        hint: 'Pick the private key (e.g. ~/.ssh/id_ed25519), not the .pub file.',
        details: { reason },
      });
    }
    return { privateKey };
  }
  const agent = target.agentSocket ?? process.env.SSH_AUTH_SOCK;
  if (!agent) {
    throw new FiredeckError('auth_failed', 'No SSH agent is running (SSH_AUTH_SOCK is not set)', {
      hint: 'Start an agent and add your key (ssh-add), or use a key file for this host.',
    });
  }
  return { agent };
}

function wrapChannel(channel: ClientChannel): ExecChannel {
  const exited = new Promise<ExitStatus>((resolve) => {
    let status: ExitStatus = { code: null, signal: null };
    channel.on('exit', (code: number | null, signal?: string) => {
      status = { code: code ?? null, signal: signal ?? null };
    });
    channel.on('close', () => resolve(status));
  });
  const stderr = channel.stderr ?? new PassThrough();
  return {
    stream: channel,
    stderr,
    resize: (cols, rows) => channel.setWindow(rows, cols, 0, 0),
    close: () => {
      channel.close();
    },
    exited,
  };
}
