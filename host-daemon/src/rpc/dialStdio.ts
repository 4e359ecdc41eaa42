import net from 'node:net';
import os from 'node:os';
import { sessionHelloFrame } from '../../../src/shared/protocol/session';

/**
 * `firedeckd dial-stdio`: bridges this process's stdin/stdout to the daemon's socket, the way
 * `docker system dial-stdio` does, so that an SSH exec channel becomes an RPC connection.
 * When stdin ends, only this side of the socket ends: the daemon still writes the replies of the calls in
 * flight, then ends its side, and this process exits after printing them. Resolves with the exit code.
 */
export function dialStdio(socketPath: string): Promise<number> {
  return new Promise((resolve) => {
    const socket = net.connect(socketPath);
    socket.once('connect', () => {
      const info = os.userInfo();
      socket.write(sessionHelloFrame({ user: info.username, uid: info.uid }));
      // pipe() ends the socket's writable side when stdin ends (a half-close); replies keep coming.
      process.stdin.pipe(socket);
      socket.pipe(process.stdout);
    });
    socket.once('error', (err: NodeJS.ErrnoException) => {
      const why =
        err.code === 'ENOENT' || err.code === 'ECONNREFUSED'
          ? `firedeckd is not running (no socket at ${socketPath}); start it with: systemctl start firedeckd`
          : err.code === 'EACCES'
            ? `permission denied on ${socketPath}: add this user to the group 'firedeck'`
            : `cannot reach firedeckd at ${socketPath}: ${err.message}`;
      process.stderr.write(`firedeckd dial-stdio: ${why}\n`);
      resolve(1);
    });
    socket.once('close', () => {
      // The daemon ended the connection: stop reading stdin too, or an open stdin would keep this process alive.
      process.stdin.unpipe(socket);
      process.stdin.destroy();
      resolve(0);
    });
  });
}
