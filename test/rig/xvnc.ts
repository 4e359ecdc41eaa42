import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { stopChild } from '../../host-daemon/src/system/processes';
import { freePort, makeTempDir, requireTool } from './tmp';

export interface Xvnc {
  display: number;
  host: string;
  port: number;
  /** Generated per start; never logged. */
  password: string;
  passwordFile: string;
  dir: string;
  pid: number;
  stop(): Promise<void>;
}

export interface XvncOptions {
  geometry?: string;
  /** The address to listen on (default 127.0.0.1, with connections from loopback only). */
  host?: string;
  /** The RFB port (default: a free one). */
  port?: number;
  /** The VncAuth password (default: random); only its first 8 characters count. Never logged. */
  password?: string;
}

/**
 * TigerVNC's Xvnc on a free display and a free port on 127.0.0.1, with VncAuth and a random password.
 * Resolves once the port accepts connections.
 */
export async function startXvnc(options: XvncOptions = {}): Promise<Xvnc> {
  const xvnc = requireTool('/usr/bin/Xvnc', 'tigervnc-standalone-server');
  const vncpasswd = requireTool('/usr/bin/vncpasswd', 'tigervnc-tools');
  const dir = makeTempDir('xvnc');
  // VncAuth uses only the first 8 characters of a password.
  const password = options.password ?? crypto.randomBytes(6).toString('base64url').slice(0, 8);
  const passwordFile = path.join(dir, 'passwd');
  fs.writeFileSync(passwordFile, execFileSync(vncpasswd, ['-f'], { input: `${password}\n` }), { mode: 0o600 });
  const display = freeDisplay();
  const host = options.host ?? '127.0.0.1';
  const port = options.port ?? (await freePort());
  const child: ChildProcess = spawn(
    xvnc,
    [
      `:${display}`,
      '-interface',
      host,
      '-rfbport',
      String(port),
      ...(host === '127.0.0.1' ? ['-localhost'] : []),
      '-SecurityTypes',
      'VncAuth',
      '-PasswordFile',
      passwordFile,
      '-geometry',
      options.geometry ?? '1024x700',
      '-depth',
      '24',
      '-nolisten',
      'tcp',
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  const log = fs.createWriteStream(path.join(dir, 'Xvnc.log'));
  child.stderr!.pipe(log);
  try {
    await waitForListening(host, port, child, 15_000);
  } catch (err) {
    await stopChild(child, 'SIGKILL');
    fs.rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  return {
    display,
    host,
    port,
    password,
    passwordFile,
    dir,
    pid: child.pid!,
    async stop() {
      await stopChild(child);
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A display number with no X lock file or socket (Xvnc refuses a taken one). */
function freeDisplay(): number {
  for (let n = 40 + crypto.randomInt(400); n < 1000; n++) {
    if (!fs.existsSync(`/tmp/.X${n}-lock`) && !fs.existsSync(`/tmp/.X11-unix/X${n}`)) return n;
  }
  throw new Error('xvnc rig: no free X display');
}

/**
 * Xvnc prints nothing reliable when its RFB port is ready, and no event exists for "a port started listening":
 * try to connect with short pauses until the deadline, failing fast if Xvnc exits.
 */
async function waitForListening(host: string, port: number, child: ChildProcess, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let exitedEarly = false;
  child.once('exit', () => {
    exitedEarly = true;
  });
  for (;;) {
    if (exitedEarly) throw new Error(`Xvnc exited before listening on port ${port}`);
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect({ host, port });
      s.once('connect', () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`Xvnc did not listen on port ${port} within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
