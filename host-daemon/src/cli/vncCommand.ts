import { FiredeckError } from '../../../src/shared/errors';
import type { VncCommand } from '../../../src/shared/protocol/hostCommand';
import { DaemonChannel } from './channelClient';
import type { CommandIo } from './consoleCommand';

export const VNC_USAGE = `usage: firedeckd vnc <vm>

Carries a VNC (RFB) session between stdin/stdout and the browser VM's desktop. firedeckd authenticates to the
guest itself; the viewer is offered no authentication and never sees the VM's VNC password.
`;

/**
 * `firedeckd vnc <vm>`: raw RFB on stdin/stdout through the daemon (`channel.open` kind vnc), whose RFB proxy
 * authenticates to the guest. Failures go to stderr as `firedeckd vnc: <message> (<kind>)` with exit code 1;
 * stdout carries only RFB bytes.
 */
export async function vncCommand(socketPath: string, command: VncCommand, io: CommandIo): Promise<number> {
  try {
    let channel: DaemonChannel | null = null;
    channel = await DaemonChannel.open(
      socketPath,
      { kind: 'vnc', vm: command.vm },
      { data: DaemonChannel.sink(io.stdout, () => channel) },
    );
    channel.pumpInput(io.stdin);
    const exit = await channel.exited;
    io.stdin.pause();
    if (exit.error) throw FiredeckError.fromJSON(exit.error);
    return 0;
  } catch (err) {
    const e = FiredeckError.from(err);
    io.stderr.write(`firedeckd vnc: ${e.message} (${e.kind})\n${e.hint ? `hint: ${e.hint}\n` : ''}`);
    return 1;
  }
}
