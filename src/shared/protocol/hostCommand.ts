import { FiredeckError } from '../errors';
import { VmRef } from './channel';

/**
 * The commands the app runs on a host, over an SSH exec channel (or the local transport), declared once: the
 * app builds their argv with {@link hostCommandArgv} (and the exec line with {@link hostCommandLine}), firedeckd's
 * CLI reads its argv with {@link parseHostCommand}. Both sides share these names and flags, so a flag the app
 * sends is one the CLI knows.
 *
 * - `dial-stdio`: stdin/stdout become an RPC connection to the daemon's socket;
 * - `console <vm> [--lines N] [--follow|-f] [--attach]`: the serial console's tail, then the live console;
 * - `shell <vm> [--] [command…]`: a shell, or the command, in a CLI VM;
 * - `vnc <vm>`: raw RFB to a browser VM's desktop.
 */
export const HOST_COMMAND_NAMES = ['dial-stdio', 'console', 'shell', 'vnc'] as const;
export type HostCommandName = (typeof HOST_COMMAND_NAMES)[number];

export interface DialStdioCommand {
  name: 'dial-stdio';
}
export interface ConsoleCommand {
  name: 'console';
  vm: string;
  /** Lines of the log's tail sent first; null: the CLI's default (200, or 20 with `attach`). */
  lines: number | null;
  follow: boolean;
  attach: boolean;
}
export interface ShellCommand {
  name: 'shell';
  vm: string;
  /** The command's words, run by the guest's shell; empty: a login shell. */
  command: string[];
}
export interface VncCommand {
  name: 'vnc';
  vm: string;
}
export type HostCommand = DialStdioCommand | ConsoleCommand | ShellCommand | VncCommand;

/** `firedeckd <command> --help`: the command's usage was asked for, nothing runs. */
export interface HostCommandHelp {
  name: 'help';
  of: HostCommandName;
}

export const CONSOLE_MAX_LINES = 100_000;

export function isHostCommandName(name: string | undefined): name is HostCommandName {
  return (HOST_COMMAND_NAMES as readonly (string | undefined)[]).includes(name);
}

/** The argv after the program (`firedeckd`) for `command`; refuses what the CLI would refuse. */
export function hostCommandArgv(command: HostCommand): string[] {
  switch (command.name) {
    case 'dial-stdio':
      return ['dial-stdio'];
    case 'console':
      return [
        'console',
        vmArg('console', command.vm),
        ...(command.lines === null ? [] : ['--lines', String(linesValue(command.lines))]),
        ...(command.follow ? ['--follow'] : []),
        ...(command.attach ? ['--attach'] : []),
      ];
    case 'shell':
      return ['shell', vmArg('shell', command.vm), ...(command.command.length > 0 ? ['--', ...command.command] : [])];
    case 'vnc':
      return ['vnc', vmArg('vnc', command.vm)];
  }
}

/**
 * The exec line for `command`: `daemonCommand` (how firedeckd is run on that host: `firedeckd`, or a prefix
 * such as `env FIREDECK_SOCKET=… node …/firedeckd.cjs`, itself shell words) and the command's argv, each word
 * quoted for the POSIX shell that sshd (or the local transport's /bin/sh) splits it with.
 */
export function hostCommandLine(daemonCommand: string, command: HostCommand): string {
  return [daemonCommand, ...hostCommandArgv(command).map(shellWord)].join(' ');
}

/**
 * Reads firedeckd's argv (from the command name on, daemon-wide options such as --socket already taken out).
 * Throws `invalid_params` (details: `command`, the command whose usage applies) on anything it does not know.
 */
export function parseHostCommand(argv: readonly string[]): HostCommand | HostCommandHelp {
  const [name, ...args] = argv;
  if (!isHostCommandName(name)) {
    throw new FiredeckError('invalid_params', `Unknown command ${JSON.stringify(name ?? '')}`, {
      hint: `Commands run over SSH: ${HOST_COMMAND_NAMES.join(', ')}`,
    });
  }
  if (args[0] === '-h' || args[0] === '--help') return { name: 'help', of: name };
  switch (name) {
    case 'dial-stdio':
      if (args.length > 0) throw usageError(name, `dial-stdio takes no arguments (got ${JSON.stringify(args[0])})`);
      return { name };
    case 'console':
      return parseConsole(args);
    case 'shell': {
      const [vm, ...rest] = args;
      if (vm === undefined || vm === '--') throw usageError(name, 'Name the VM');
      return { name, vm: vmArg(name, vm), command: rest[0] === '--' ? rest.slice(1) : rest };
    }
    case 'vnc':
      if (args.length !== 1) throw usageError(name, args.length === 0 ? 'Name the VM' : 'vnc takes one VM');
      return { name, vm: vmArg(name, args[0]!) };
  }
}

function parseConsole(args: readonly string[]): ConsoleCommand {
  const out: ConsoleCommand = { name: 'console', vm: '', lines: null, follow: false, attach: false };
  const positionals: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (arg === '--') {
      positionals.push(...args.slice(i + 1));
      break;
    }
    if (arg === '--follow' || arg === '-f') out.follow = true;
    else if (arg === '--attach') out.attach = true;
    else if (arg === '--lines' || arg.startsWith('--lines=')) {
      const value = arg === '--lines' ? args[++i] : arg.slice('--lines='.length);
      if (value === undefined || !/^\d{1,6}$/.test(value)) {
        throw usageError('console', '--lines must be a whole number');
      }
      out.lines = linesValue(Number(value));
    } else if (arg.startsWith('-') && arg !== '-') throw usageError('console', `Unknown option ${arg}`);
    else positionals.push(arg);
  }
  if (positionals.length !== 1) throw usageError('console', positionals.length === 0 ? 'Name the VM' : 'One VM only');
  out.vm = vmArg('console', positionals[0]!);
  return out;
}

function vmArg(command: HostCommandName, vm: string): string {
  if (vm.startsWith('-') || !VmRef.safeParse(vm).success) {
    throw usageError(command, `Not a VM id or name: ${JSON.stringify(vm.slice(0, 140))}`);
  }
  return vm;
}

function linesValue(lines: number): number {
  if (!Number.isInteger(lines) || lines < 1 || lines > CONSOLE_MAX_LINES) {
    throw usageError('console', `--lines must be between 1 and ${CONSOLE_MAX_LINES}`);
  }
  return lines;
}

function usageError(command: HostCommandName, message: string): FiredeckError {
  return new FiredeckError('invalid_params', message, { details: { command } });
}

/** One word for a POSIX shell: as it is when it holds nothing the shell treats specially, else single-quoted. */
export function shellWord(word: string): string {
  if (/^[A-Za-z0-9._/:=@%+-]+$/.test(word)) return word;
  return `'${word.replace(/'/g, `'\\''`)}'`;
}
