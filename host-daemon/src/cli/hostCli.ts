import type { DaemonConfig } from '../config';
import { consoleCommand } from './consoleCommand';
import { DaemonClient } from './daemonClient';
import { shellCommand } from './shellCommand';
import { vncCommand } from './vncCommand';
import { vmCommand } from './vmCommand';

export const HOST_CLI_COMMANDS = ['vm', 'console', 'shell', 'vnc'] as const;
export type HostCliCommand = (typeof HOST_CLI_COMMANDS)[number];

export function isHostCliCommand(command: string | undefined): command is HostCliCommand {
  return (HOST_CLI_COMMANDS as readonly (string | undefined)[]).includes(command);
}

/** Runs one operator command against the daemon's socket and returns the exit code. */
export async function runHostCli(command: HostCliCommand, argv: string[], config: DaemonConfig): Promise<number> {
  const args = takeGlobalOptions(argv, config);
  const io = { stdin: process.stdin, stdout: process.stdout, stderr: process.stderr };
  // Streams are channels through the daemon's socket: this process never reads a console file or a secret.
  switch (command) {
    case 'console':
      return consoleCommand(config.socketPath, args, io);
    case 'shell':
      return shellCommand(config.socketPath, args, io);
    case 'vnc':
      return vncCommand(config.socketPath, args, io);
    case 'vm':
      break;
  }
  const client = await DaemonClient.connect(config.socketPath);
  try {
    return await vmCommand(client, args, process.stdout);
  } finally {
    client.close();
  }
}

/** The daemon-wide --socket/--state-dir/--run-dir may appear anywhere before a `--`; the rest is the command's. */
function takeGlobalOptions(argv: string[], config: DaemonConfig): string[] {
  const rest: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--') {
      rest.push(...argv.slice(i));
      break;
    }
    const [flag, inline] =
      a.startsWith('--') && a.includes('=')
        ? [a.slice(0, a.indexOf('=')), a.slice(a.indexOf('=') + 1)]
        : [a, undefined];
    if (flag === '--socket' || flag === '--state-dir' || flag === '--run-dir') {
      const value = inline ?? argv[++i];
      if (value === undefined) throw new Error(`${flag} needs a value`);
      if (flag === '--socket') config.socketPath = value;
      else if (flag === '--state-dir') config.stateDir = value;
      else {
        config.runDir = value;
        if (process.env.FIREDECK_SOCKET === undefined) config.socketPath = `${value}/firedeckd.sock`;
      }
      continue;
    }
    rest.push(a);
  }
  return rest;
}
