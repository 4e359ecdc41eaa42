import os from 'node:os';
import { FiredeckError } from '../../../src/shared/errors';
import type { ShellCommand } from '../../../src/shared/protocol/hostCommand';
import { DaemonChannel } from './channelClient';
import type { CommandIo } from './consoleCommand';

export const SHELL_USAGE = `usage: firedeckd shell <vm> [--] [command…]

A shell (or the command) in a CLI VM as user firedeck. firedeckd opens it with the key only the daemon holds
and the guest's pinned host key; on a terminal the window size follows yours.
`;

/**
 * `firedeckd shell <vm> [--] [command…]`: a shell through the daemon (`channel.open` kind shell). On a terminal it
 * asks for a pty of this terminal's size, puts the terminal in raw mode and passes SIGWINCH on as resizes.
 */
export async function shellCommand(socketPath: string, command: ShellCommand, io: CommandIo): Promise<number> {
  const words = command.command;
  const tty = io.stdin.isTTY === true && io.stdout.isTTY === true;
  const size = (): { cols: number; rows: number } => ({ cols: io.stdout.columns || 80, rows: io.stdout.rows || 24 });
  const term = /^[A-Za-z0-9._+-]{1,64}$/.test(process.env.TERM ?? '') ? process.env.TERM! : 'xterm-256color';
  let channel: DaemonChannel | null = null;
  channel = await DaemonChannel.open(
    socketPath,
    // Joined with spaces and run by the guest's shell, as ssh does with its command words.
    {
      kind: 'shell',
      vm: command.vm,
      command: words.length > 0 ? words.join(' ') : null,
      pty: tty ? { ...size(), term } : null,
    },
    { data: DaemonChannel.sink(io.stdout, () => channel), stderr: DaemonChannel.sink(io.stderr, () => channel) },
  );
  const onResize = (): void => {
    const s = size();
    channel?.resize(s.cols, s.rows);
  };
  if (tty) {
    io.stdin.setRawMode(true);
    process.on('SIGWINCH', onResize);
  }
  channel.pumpInput(io.stdin);
  try {
    const exit = await channel.exited;
    if (exit.error) throw FiredeckError.fromJSON(exit.error);
    if (exit.code !== null) return exit.code;
    const signal = exit.signal ? os.constants.signals[`SIG${exit.signal}` as NodeJS.Signals] : undefined;
    return signal ? 128 + signal : 1;
  } finally {
    process.off('SIGWINCH', onResize);
    if (tty) io.stdin.setRawMode(false);
    io.stdin.pause();
  }
}
