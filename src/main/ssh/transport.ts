import type { Duplex, Readable } from 'node:stream';
import type { FiredeckError } from '../../shared/errors';

export interface PtyRequest {
  cols: number;
  rows: number;
  term?: string;
}

export interface ExecOptions {
  pty?: PtyRequest;
}

export interface ExitStatus {
  code: number | null;
  signal: string | null;
}

/** One command running on the host: its stdin/stdout as a duplex stream, stderr apart. */
export interface ExecChannel {
  readonly stream: Duplex;
  readonly stderr: Readable;
  /** Passes a window size to the command's pty; a no-op without one. */
  resize(cols: number, rows: number): void;
  close(): void;
  readonly exited: Promise<ExitStatus>;
}

/** A way onto one host: an SSH connection, or the local machine for the embedded default host. */
export interface Transport {
  /** For messages: `root@10.0.0.5:22` or `this machine`. */
  readonly where: string;
  exec(command: string, options?: ExecOptions): Promise<ExecChannel>;
  /** Called once when the transport is gone; `error` is null after close(). */
  onClose(listener: (error: FiredeckError | null) => void): () => void;
  close(): void;
}
