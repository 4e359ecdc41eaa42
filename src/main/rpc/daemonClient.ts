import type { Duplex } from 'node:stream';
import { FiredeckError } from '../../shared/errors';
import { RpcClient } from '../../shared/rpc/rpcClient';

export interface DaemonClientOptions {
  /** Per-call deadline; long-running methods pass their own. */
  callTimeoutMs?: number;
}

/**
 * The app's client of firedeckd over a duplex stream (`firedeckd dial-stdio` on an exec channel, or a unix
 * socket): the shared RpcClient fed by the stream. `close()` ends the stream.
 */
export class DaemonClient extends RpcClient {
  constructor(
    private readonly stream: Duplex,
    options: DaemonClientOptions = {},
  ) {
    super({ write: (frame) => stream.write(frame), callTimeoutMs: options.callTimeoutMs ?? 60_000 });
    stream.on('data', (chunk: Buffer | string) => this.push(chunk));
    stream.on('error', (err: Error) => this.linkClosed(FiredeckError.from(err, 'disconnected')));
    stream.on('close', () => this.linkClosed(new FiredeckError('disconnected', 'The daemon connection closed')));
    stream.on('end', () => this.linkClosed(new FiredeckError('disconnected', 'The daemon connection ended')));
  }

  close(): void {
    this.linkClosed(new FiredeckError('disconnected', 'The daemon connection was closed'));
    this.stream.destroy();
  }
}
