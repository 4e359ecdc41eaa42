import { parseArgs } from 'node:util';
import { FiredeckError } from '../../../src/shared/errors';
import { DaemonChannel } from './channelClient';

export const CONSOLE_USAGE = `usage: firedeckd console <vm> [--lines N] [--follow] [--attach]

  (no flag)   print the last N lines of the VM's serial console (default 200)
  --follow    then keep printing what the guest writes (Ctrl-C stops)
  --attach    two-way: your keystrokes go to the guest's serial port (Ctrl-] detaches)
`;

const DETACH = 0x1d; // Ctrl-]

export interface CommandIo {
  stdin: NodeJS.ReadStream;
  stdout: NodeJS.WriteStream;
  stderr: NodeJS.WriteStream;
}

/**
 * `firedeckd console`: the serial console through the daemon (`channel.open` kind console): the capped log's
 * tail, then with --follow or --attach the live console. The daemon reads the console; this process never does.
 */
export async function consoleCommand(socketPath: string, args: string[], io: CommandIo): Promise<number> {
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
  const attach = values.attach === true;
  const follow = values.follow === true;
  const lines = values.lines === undefined ? (attach ? 20 : 200) : Math.min(100_000, Math.max(1, Number(values.lines)));
  const raw = attach && io.stdin.isTTY === true;
  let channel: DaemonChannel | null = null;
  let detached = false;
  // `live` may arrive with the reply, before `channel` is assigned: use the channel it is given.
  const onLive = (live: DaemonChannel): void => {
    const name = live.result.vmName;
    if (!attach) {
      io.stderr.write(`[following ${name}; Ctrl-C stops]\n`);
      return;
    }
    io.stderr.write(`[attached to ${name}; Ctrl-] detaches]\r\n`);
    if (raw) io.stdin.setRawMode(true);
    live.pumpInput(io.stdin, (data) => {
      const cut = data.indexOf(DETACH);
      if (cut === -1) return data;
      if (cut > 0) live.write(data.subarray(0, cut));
      detached = true;
      live.close();
      return null;
    });
  };
  channel = await DaemonChannel.open(
    socketPath,
    { kind: 'console', vm: positionals[0]!, lines, follow, attach },
    { data: DaemonChannel.sink(io.stdout, () => channel), live: onLive },
  );
  const exit = await channel.exited;
  if (attach) {
    if (raw) io.stdin.setRawMode(false);
    io.stdin.pause();
    io.stderr.write('\r\n[detached]\r\n');
  }
  if (exit.error && !detached) throw FiredeckError.fromJSON(exit.error);
  return 0;
}
