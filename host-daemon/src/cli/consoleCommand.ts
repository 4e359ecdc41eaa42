import { FiredeckError } from '../../../src/shared/errors';
import type { ConsoleCommand } from '../../../src/shared/protocol/hostCommand';
import { DaemonChannel } from './channelClient';

export const CONSOLE_USAGE = `usage: firedeckd console <vm> [--lines N] [--follow] [--attach]

  (no flag)   print the last N lines of the VM's serial console (default 200, at most 100000)
  --follow    then keep printing what the guest writes (Ctrl-C stops); also -f
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
export async function consoleCommand(socketPath: string, command: ConsoleCommand, io: CommandIo): Promise<number> {
  const { vm, attach, follow } = command;
  const lines = command.lines ?? (attach ? 20 : 200);
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
    { kind: 'console', vm, lines, follow, attach },
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
