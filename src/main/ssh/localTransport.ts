import { spawn } from 'node:child_process';
import { Duplex } from 'node:stream';
import { FiredeckError } from '../../shared/errors';
import type { ExecChannel, ExecOptions, ExitStatus, Transport } from './transport';

/**
 * The embedded default host: commands run on this machine, with the same channel interface as SSH.
 * A pty comes from util-linux `script`, which cannot pass window resizes on; resize is then a no-op.
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
          resize: () => undefined,
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
