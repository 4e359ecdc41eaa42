import { execFile, spawn } from 'node:child_process';
import fs from 'node:fs';
import { Duplex } from 'node:stream';
import { FiredeckError } from '../../shared/errors';
import type { ExecChannel, ExecOptions, ExitStatus, Transport } from './transport';

/**
 * The embedded default host: commands run on this machine, with the same channel interface as SSH.
 * A pty comes from util-linux `script`. `script` passes no window size on from its own (piped) input, so a
 * resize sets the size on the pty itself (`stty -F`), and the kernel signals SIGWINCH to the pty's foreground
 * process (e.g. ssh, which forwards it as an SSH window change).
 */
export class LocalTransport implements Transport {
  readonly where = 'this machine';
  private readonly children = new Set<ReturnType<typeof spawn>>();
  private readonly closeListeners = new Set<(error: FiredeckError | null) => void>();
  private closed = false;

  exec(command: string, options: ExecOptions = {}): Promise<ExecChannel> {
    if (this.closed) return Promise.reject(new FiredeckError('disconnected', 'The local transport is closed'));
    const argv = options.pty
      ? [
          'script',
          '-qfec',
          `stty cols ${options.pty.cols} rows ${options.pty.rows} 2>/dev/null; exec ${command}`,
          '/dev/null',
        ]
      : ['/bin/sh', '-c', command];
    const env = options.pty ? { ...process.env, TERM: options.pty.term ?? 'xterm-256color' } : process.env;
    const child = spawn(argv[0]!, argv.slice(1), { stdio: ['pipe', 'pipe', 'pipe'], env });
    this.children.add(child);
    return new Promise((resolve, reject) => {
      child.once('error', (err) => {
        this.children.delete(child);
        reject(new FiredeckError('unavailable', `Cannot run ${argv[0]} on this machine: ${err.message}`));
      });
      child.once('spawn', () => {
        const exited = new Promise<ExitStatus>((res) => {
          child.once('close', (code, signal) => {
            this.children.delete(child);
            res({ code, signal });
          });
        });
        const stream = Duplex.from({ readable: child.stdout, writable: child.stdin });
        resolve({
          stream,
          stderr: child.stderr,
          resize: options.pty ? (cols, rows) => resizePty(child.pid, cols, rows) : () => undefined,
          close: () => {
            child.stdin.end();
            child.kill('SIGTERM');
          },
          exited,
        });
      });
    });
  }

  onClose(listener: (error: FiredeckError | null) => void): () => void {
    this.closeListeners.add(listener);
    return () => this.closeListeners.delete(listener);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const child of this.children) child.kill('SIGTERM');
    for (const l of this.closeListeners) l(null);
    this.closeListeners.clear();
  }
}

/**
 * The pty `script` made for its child: the terminal the child's stdin is on (`/dev/pts/N`), found through
 * /proc (Linux, like the daemon this transport reaches). Null before the child exists or after it ended.
 */
export function ptyOfScript(scriptPid: number): string | null {
  let children: string[];
  try {
    children = fs.readFileSync(`/proc/${scriptPid}/task/${scriptPid}/children`, 'utf8').trim().split(/\s+/);
  } catch {
    return null;
  }
  for (const child of children) {
    if (!/^\d+$/.test(child)) continue;
    try {
      const tty = fs.readlinkSync(`/proc/${child}/fd/0`);
      if (/^\/dev\/pts\/\d+$/.test(tty)) return tty;
    } catch {
      // the child is gone or not ours to look at
    }
  }
  return null;
}

/** Best effort: a session that already ended has no pty left to size. */
function resizePty(scriptPid: number | undefined, cols: number, rows: number): void {
  if (scriptPid === undefined || !Number.isInteger(cols) || !Number.isInteger(rows) || cols < 1 || rows < 1) return;
  const tty = ptyOfScript(scriptPid);
  if (tty === null) return;
  execFile('stty', ['-F', tty, 'cols', String(cols), 'rows', String(rows)], () => undefined);
}
