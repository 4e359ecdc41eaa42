import net from 'node:net';

/** A QMP command as a client sends it. */
export interface QmpCommand {
  execute: string;
  id?: number;
}

export interface QmpServerOptions {
  /** The `return` value of a command (default: `query-status` says running, anything else `{}`). */
  reply?: (cmd: QmpCommand) => unknown;
  /** Runs after a command's reply was written (a powerdown that ends the hypervisor, say). */
  after?: (cmd: QmpCommand, socket: net.Socket) => void;
  /** Each step (the greeting, each reply) goes through here: run it now, or hold it as a stopped QEMU would. */
  gate?: (step: () => void) => void;
}

/**
 * Test support (not used by the daemon): a unix-socket server that speaks QMP as QEMU does: its greeting, then one
 * JSON line per command, with the command's id. Every socket it accepted is destroyed by `destroyAll`.
 */
export function qmpServer(options: QmpServerOptions = {}): net.Server & { destroyAll(): void } {
  const reply =
    options.reply ??
    ((cmd: QmpCommand) => (cmd.execute === 'query-status' ? { status: 'running', running: true } : {}));
  const gate = options.gate ?? ((step: () => void) => step());
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('error', () => undefined);
    socket.once('close', () => sockets.delete(socket));
    gate(() => {
      socket.write('{"QMP": {"version": {"qemu": {"micro": 0, "minor": 2, "major": 8}}, "capabilities": []}}\r\n');
      let buffer = '';
      socket.on('data', (chunk: Buffer) => {
        buffer += chunk.toString('utf8');
        let nl: number;
        while ((nl = buffer.indexOf('\n')) !== -1) {
          const cmd = JSON.parse(buffer.slice(0, nl)) as QmpCommand;
          buffer = buffer.slice(nl + 1);
          gate(() => {
            if (!socket.destroyed) socket.write(JSON.stringify({ return: reply(cmd), id: cmd.id }) + '\r\n');
            options.after?.(cmd, socket);
          });
        }
      });
    });
  });
  return Object.assign(server, {
    destroyAll: () => {
      for (const socket of sockets) socket.destroy();
    },
  });
}
