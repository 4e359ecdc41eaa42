import { FiredeckError, isFiredeckError } from '../../../src/shared/errors';
import { HOST_COMMAND_NAMES, parseHostCommand, type HostCommandName } from '../../../src/shared/protocol/hostCommand';
import type { DaemonConfig } from '../config';
import { dialStdio } from '../rpc/dialStdio';
import { AUDIT_USAGE, auditCommand, parseAuditArgs } from './auditCommand';
import { authCommand } from './authCommand';
import { CONSOLE_USAGE, consoleCommand, type CommandIo } from './consoleCommand';
import { PROXY_USAGE, parseProxyArgs, proxyCommand } from './proxyCommand';
import { DaemonClient } from './daemonClient';
import { SHELL_USAGE, shellCommand } from './shellCommand';
import { VNC_USAGE, vncCommand } from './vncCommand';
import { vmCommand } from './vmCommand';

/**
 * The commands the app runs over SSH (their grammar is src/shared/protocol/hostCommand.ts), `vm`, `auth`, `audit`,
 * `proxy`.
 */
export const HOST_CLI_COMMANDS = [...HOST_COMMAND_NAMES, 'vm', 'auth', 'audit', 'proxy'] as const;
export type HostCliCommand = (typeof HOST_CLI_COMMANDS)[number];

export const DIAL_STDIO_USAGE = `usage: firedeckd dial-stdio

Bridges stdin/stdout to the daemon's socket: the app runs it over SSH as its RPC connection.
`;

const USAGE: Record<HostCommandName, string> = {
  'dial-stdio': DIAL_STDIO_USAGE,
  console: CONSOLE_USAGE,
  shell: SHELL_USAGE,
  vnc: VNC_USAGE,
};

export function isHostCliCommand(command: string | undefined): command is HostCliCommand {
  return (HOST_CLI_COMMANDS as readonly (string | undefined)[]).includes(command);
}

const processIo = (): CommandIo => ({ stdin: process.stdin, stdout: process.stdout, stderr: process.stderr });

/** Runs one operator command against the daemon's socket and returns the exit code. */
export async function runHostCli(
  command: HostCliCommand,
  argv: string[],
  config: DaemonConfig,
  io: CommandIo = processIo(),
): Promise<number> {
  const args = takeGlobalOptions(argv, config);
  if (command === 'audit') {
    // Parsed before connecting: bad flags and --help need no daemon.
    const query = parseAuditArgs(args);
    if (query === 'help') {
      io.stdout.write(AUDIT_USAGE);
      return 0;
    }
    const client = await DaemonClient.connect(config.socketPath);
    try {
      return await auditCommand(client, query, io.stdout);
    } finally {
      client.close();
    }
  }
  if (command === 'proxy') {
    const parsedProxy = parseProxyArgs(args);
    if (parsedProxy.sub === 'help') {
      io.stdout.write(PROXY_USAGE);
      return 0;
    }
    const client = await DaemonClient.connect(config.socketPath);
    try {
      return await proxyCommand(client, parsedProxy, io);
    } finally {
      client.close();
    }
  }
  if (command === 'vm' || command === 'auth') {
    const client = await DaemonClient.connect(config.socketPath);
    try {
      return await (command === 'vm' ? vmCommand(client, args, io.stdout) : authCommand(client, args, io));
    } finally {
      client.close();
    }
  }
  let parsed: ReturnType<typeof parseHostCommand>;
  try {
    parsed = parseHostCommand([command, ...args]);
  } catch (err) {
    if (!isFiredeckError(err, 'invalid_params')) throw err;
    io.stderr.write(`${USAGE[command]}\nfiredeckd ${command}: ${err.message}\n`);
    return 2;
  }
  // Streams are channels through the daemon's socket: this process never reads a console file or a secret.
  switch (parsed.name) {
    case 'help':
      io.stdout.write(USAGE[parsed.of]);
      return 0;
    case 'dial-stdio':
      return dialStdio(config.socketPath);
    case 'console':
      return consoleCommand(config.socketPath, parsed, io);
    case 'shell':
      return shellCommand(config.socketPath, parsed, io);
    case 'vnc':
      return vncCommand(config.socketPath, parsed, io);
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
      if (value === undefined) throw new FiredeckError('invalid_params', `${flag} needs a value`);
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
