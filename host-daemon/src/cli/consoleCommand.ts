import net from 'node:net';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { FiredeckError } from '../../../src/shared/errors';
import type { DaemonClient } from './daemonClient';
import { resolveVm } from './vmRef';

export const CONSOLE_USAGE = `usage: firedeckd console <vm> [--lines N] [--follow] [--attach]

  (no flag)   print the last N lines of the VM's serial console (default 200)
  --follow    then keep printing what the guest writes (Ctrl-C stops)
  --attach    two-way: your keystrokes go to the guest's serial port (Ctrl-] detaches)
`;

const DETACH = 0x1d; // Ctrl-]

/** `firedeckd console`: the serial console over the VM's attach socket, which the daemon's console pump serves. */
export async function consoleCommand(
  client: DaemonClient,
  args: string[],
  runDir: string,
  io: { stdin: NodeJS.ReadStream; stdout: NodeJS.WriteStream; stderr: NodeJS.WriteStream },
): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    options: { lines: { type: 'string' }, follow: { type: 'boolean', short: 'f' }, attach: { type: 'boolean' } },
    strict: true,
    allowPositionals: true,
  });
  if (positionals.length !== 1) {
    io.stderr.write(CONSOLE_USAGE);
    return 2;
  }
  if (values.lines !== undefined && !/^\d{1,6}$/.test(values.lines)) {
    throw new FiredeckError('invalid_params', '--lines must be a whole number');
  }
  const vm = await resolveVm(client, positionals[0]);
  const lines = values.lines === undefined ? (values.attach ? 20 : 200) : Math.max(1, Number(values.lines));
  const tail = await client.call('vm.console.tail', { id: vm.id, lines });
  io.stdout.write(tail.lines.map((l) => l + '\n').join(''));
  if (!values.follow && !values.attach) return 0;
  if (vm.state !== 'booting' && vm.state !== 'running' && vm.state !== 'stopping') {
    throw new FiredeckError('invalid_state', `VM ${vm.name} is ${vm.state}: nothing to follow`);
  }
  const socketPath = path.join(runDir, 'vms', vm.id, 'console.sock');
  const socket = await new Promise<net.Socket>((resolve, reject) => {
    const s = net.connect(socketPath);
    s.once('connect', () => resolve(s));
    s.once('error', (err) =>
      reject(new FiredeckError('unavailable', `Cannot open the console of ${vm.name}: ${err.message}`)),
    );
  });
  socket.pipe(io.stdout, { end: false });
  if (!values.attach) {
    io.stderr.write(`[following ${vm.name}; Ctrl-C stops]\n`);
    await new Promise<void>((resolve) => socket.once('close', () => resolve()));
    return 0;
  }
  io.stderr.write(`[attached to ${vm.name}; Ctrl-] detaches]\r\n`);
  const raw = io.stdin.isTTY === true;
  if (raw) io.stdin.setRawMode(true);
  return new Promise<number>((resolve) => {
    let done = false;
    const finish = (): void => {
      if (done) return;
      done = true;
      io.stdin.off('data', onInput);
      if (raw) io.stdin.setRawMode(false);
      io.stdin.pause();
      socket.destroy();
      io.stderr.write('\r\n[detached]\r\n');
      resolve(0);
    };
    const onInput = (data: Buffer): void => {
      const cut = data.indexOf(DETACH);
      if (cut === -1) {
        socket.write(data);
        return;
      }
      if (cut > 0) socket.write(data.subarray(0, cut));
      finish();
    };
    io.stdin.on('data', onInput);
    io.stdin.resume();
    io.stdin.once('end', finish);
    socket.once('close', finish);
  });
}
