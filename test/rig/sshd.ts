import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { stopChild } from '../../host-daemon/src/system/processes';
import { CuttableLink } from './cuttableLink';
import { freePort, makeTempDir, requireTool, waitForOutput } from './tmp';

export interface SshdOptions {
  /** Directories put first on PATH in every session (e.g. the daemon rig's bin dir with `firedeckd`). */
  pathPrepend?: string[];
  /** Reuse this host key (private key file) instead of generating one, e.g. to restart with the same identity. */
  hostKeyPath?: string;
  /**
   * Serve through a link the test can cut and resume (`cut()`, `resume()`): `port` is then the link's, and the
   * sshd itself listens on another.
   */
  cuttable?: boolean;
}

export interface Sshd {
  host: '127.0.0.1';
  port: number;
  user: 'root';
  dir: string;
  clientKeyPath: string;
  clientPrivateKey: string;
  /** `ssh-ed25519 AAAA…` */
  hostPublicKey: string;
  /** `SHA256:…`, as OpenSSH prints it. */
  hostKeyFingerprint: string;
  hostKeyPath: string;
  pid: number;
  /**
   * Only with `cuttable`: stops accepting connections and drops the live ones (reset at once, or with `silent`
   * held open with nothing passing, so that only the client's keepalives notice).
   */
  cut(options?: { silent?: boolean }): Promise<void>;
  /** Only with `cuttable`: accepts connections again, on the same port. */
  resume(): Promise<void>;
  stop(): Promise<void>;
}

/**
 * An OpenSSH sshd on 127.0.0.1, on a free port, with its own config, host key and authorized keys in a temp
 * dir. It never touches the system's sshd. Runs in the foreground (-D) so that stop() ends exactly it.
 */
export async function startSshd(options: SshdOptions = {}): Promise<Sshd> {
  const sshd = requireTool('/usr/sbin/sshd', 'openssh-server');
  requireTool('/usr/bin/ssh-keygen', 'openssh-client');
  fs.mkdirSync('/run/sshd', { recursive: true, mode: 0o755 });
  const dir = makeTempDir('sshd');
  const hostKeyPath = path.join(dir, 'host_ed25519');
  if (options.hostKeyPath) {
    fs.copyFileSync(options.hostKeyPath, hostKeyPath);
    fs.copyFileSync(`${options.hostKeyPath}.pub`, `${hostKeyPath}.pub`);
    fs.chmodSync(hostKeyPath, 0o600);
  } else {
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'firedeck-test-host', '-f', hostKeyPath]);
  }
  const clientKeyPath = path.join(dir, 'client_ed25519');
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'firedeck-test-client', '-f', clientKeyPath]);
  fs.copyFileSync(`${clientKeyPath}.pub`, path.join(dir, 'authorized_keys'));

  const port = await freePort();
  const sessionPath = [
    ...(options.pathPrepend ?? []),
    '/usr/local/sbin',
    '/usr/local/bin',
    '/usr/sbin',
    '/usr/bin',
    '/sbin',
    '/bin',
  ].join(':');
  const config = [
    `Port ${port}`,
    'ListenAddress 127.0.0.1',
    `HostKey ${hostKeyPath}`,
    `PidFile ${path.join(dir, 'sshd.pid')}`,
    'PermitRootLogin prohibit-password',
    'PasswordAuthentication no',
    'KbdInteractiveAuthentication no',
    'UsePAM no',
    `AuthorizedKeysFile ${path.join(dir, 'authorized_keys')}`,
    'StrictModes no',
    'AllowTcpForwarding yes',
    'AllowStreamLocalForwarding yes',
    'Subsystem sftp /usr/lib/openssh/sftp-server',
    'LogLevel VERBOSE',
    'MaxStartups 100:30:200',
    'MaxSessions 100',
    `SetEnv PATH=${sessionPath}`,
  ].join('\n');
  const configPath = path.join(dir, 'sshd_config');
  fs.writeFileSync(configPath, config + '\n');
  execFileSync(sshd, ['-t', '-f', configPath]);

  const child: ChildProcess = spawn(sshd, ['-D', '-e', '-f', configPath], { stdio: ['ignore', 'ignore', 'pipe'] });
  const log = fs.createWriteStream(path.join(dir, 'sshd.log'));
  child.stderr!.pipe(log);
  try {
    await waitForOutput(child.stderr!, /Server listening on 127\.0\.0\.1 port \d+/, 10_000, 'sshd');
  } catch (err) {
    child.kill('SIGKILL');
    throw err;
  }

  const link = options.cuttable ? new CuttableLink(port) : null;
  try {
    await link?.listen();
  } catch (err) {
    await stopChild(child);
    throw err;
  }
  const needLink = (): CuttableLink => {
    if (!link) throw new Error('This sshd was started without `cuttable`');
    return link;
  };

  const hostPublicKey = fs.readFileSync(`${hostKeyPath}.pub`, 'utf8').trim().split(' ').slice(0, 2).join(' ');
  const blob = Buffer.from(hostPublicKey.split(' ')[1]!, 'base64');
  const hostKeyFingerprint = `SHA256:${crypto.createHash('sha256').update(blob).digest('base64').replace(/=+$/, '')}`;

  return {
    host: '127.0.0.1',
    port: link?.port ?? port,
    user: 'root',
    dir,
    clientKeyPath,
    clientPrivateKey: fs.readFileSync(clientKeyPath, 'utf8'),
    hostPublicKey,
    hostKeyFingerprint,
    hostKeyPath,
    pid: child.pid!,
    cut: (opts) => needLink().cut(opts),
    resume: () => needLink().resume(),
    async stop() {
      await link?.close();
      await stopChild(child);
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}
