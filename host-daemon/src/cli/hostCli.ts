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
  const client = await DaemonClient.connect(config.socketPath);
  try {
    switch (command) {
      case 'vm':
        return await vmCommand(client, args, process.stdout);
      case 'console':
        return await consoleCommand(client, args, config.runDir, {
          stdin: process.stdin,
          stdout: process.stdout,
          stderr: process.stderr,
        });
      case 'shell':
        return await shellCommand(client, args, config.stateDir);
      case 'vnc':
        return await vncCommand(client, args, config.stateDir, {
          stdin: process.stdin,
          stdout: process.stdout,
          stderr: process.stderr,
        });
    }
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
