import net from 'node:net';
import os from 'node:os';
import { FiredeckError } from '../../../src/shared/errors';
import { sessionHelloFrame } from '../../../src/shared/protocol/session';
import { RpcClient } from '../../../src/shared/rpc/rpcClient';

/**
 * The host-side CLI's connection to firedeckd: the shared RpcClient on the daemon's socket, after the hello
 * (the daemon names the caller from the kernel; the hello's claim is only noted). Calls wait as long as the daemon works on them (`vm.waitReady` names its own limit).
 */
export class DaemonClient extends RpcClient {
  private constructor(private readonly socket: net.Socket) {
    super({ write: (frame) => socket.write(frame), callTimeoutMs: 0 });
    socket.on('data', (chunk: Buffer) => this.push(chunk));
    socket.on('error', () => undefined);
    socket.on('close', () => this.linkClosed(new FiredeckError('disconnected', 'firedeckd closed the connection')));
  }

  static connect(socketPath: string): Promise<DaemonClient> {
    return new Promise((resolve, reject) => {
      const socket = net.connect(socketPath);
      socket.once('connect', () => {
        const info = os.userInfo();
        socket.write(sessionHelloFrame({ user: info.username, uid: info.uid }));
        resolve(new DaemonClient(socket));
      });
      socket.once('error', (err: NodeJS.ErrnoException) => {
        reject(unreachable(socketPath, err));
      });
    });
  }

  close(): void {
    this.socket.end();
  }
}

/** The typed error for a daemon socket that cannot be reached, with the fix for the usual causes. */
export function unreachable(socketPath: string, err: NodeJS.ErrnoException): FiredeckError {
  const hint =
    err.code === 'ENOENT' || err.code === 'ECONNREFUSED'
      ? 'Start it with: systemctl start firedeckd'
      : err.code === 'EACCES'
        ? "Add this user to the group 'firedeck'."
        : undefined;
  return new FiredeckError(
    'unavailable',
    `Cannot reach firedeckd at ${socketPath}: ${err.message}`,
    hint ? { hint } : {},
  );
}
