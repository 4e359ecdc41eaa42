import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { FiredeckError } from '../errors';
import { hostCommandArgv, hostCommandLine, parseHostCommand, shellWord, type HostCommand } from './hostCommand';

/** The words a POSIX shell (as sshd and the local transport run it) makes of an exec line. */
function wordsOf(line: string): string[] {
  return execFileSync('/bin/sh', ['-c', line], { encoding: 'utf8' }).split('\0').slice(0, -1);
}

/** `printf '%s\0'` in place of firedeckd: prints the argv firedeckd would get, one NUL after each word. */
const ARGV_PRINTER = `printf '%s\\0'`;

const commands: HostCommand[] = [
  { name: 'dial-stdio' },
  { name: 'console', vm: 'vm-0011aabb', lines: null, follow: true, attach: false },
  { name: 'console', vm: 'vm-0011aabb', lines: null, follow: false, attach: false },
  { name: 'console', vm: 'desk-a', lines: 1, follow: true, attach: true },
  { name: 'shell', vm: 'vm-0011aabb', command: [] },
  { name: 'shell', vm: 'net', command: ['id', '-un;', 'hostname', "it's", '--', ''] },
  { name: 'vnc', vm: 'vm-0011aabb' },
];

function refused(fn: () => unknown): FiredeckError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(FiredeckError);
    return err as FiredeckError;
  }
  throw new Error('not refused');
}

describe('host command grammar (app ↔ firedeckd CLI)', () => {
  it('what the app builds, the CLI parses to the same command', () => {
    for (const command of commands) expect(parseHostCommand(hostCommandArgv(command))).toEqual(command);
  });

  it('the exec line reaches firedeckd as the same argv through a real shell, behind a prefix of shell words', () => {
    for (const command of commands) {
      const argv = wordsOf(hostCommandLine(ARGV_PRINTER, command));
      expect(argv).toEqual(hostCommandArgv(command));
      expect(parseHostCommand(argv)).toEqual(command);
    }
    expect(wordsOf(`${ARGV_PRINTER} ${shellWord("a 'b' $HOME `x` \\")}`)).toEqual(["a 'b' $HOME `x` \\"]);
  });

  it('reads the forms operators type: -f, --lines=N, flags after the VM, -- before a shell command', () => {
    expect(parseHostCommand(['console', '-f', '--lines=5', 'web'])).toEqual({
      name: 'console',
      vm: 'web',
      lines: 5,
      follow: true,
      attach: false,
    });
    expect(parseHostCommand(['shell', 'net', 'ls', '-l'])).toMatchObject({ command: ['ls', '-l'] });
    expect(parseHostCommand(['shell', 'net', '--', 'ls', '-l'])).toMatchObject({ command: ['ls', '-l'] });
    expect(parseHostCommand(['vnc', '--help'])).toEqual({ name: 'help', of: 'vnc' });
  });

  it('refuses bad input with invalid_params naming the command whose usage applies', () => {
    const cases: [string[], string, RegExp][] = [
      [['vnc'], 'vnc', /Name the VM/],
      [['vnc', 'a', 'b'], 'vnc', /one VM/],
      [['vnc', 'a/../b'], 'vnc', /Not a VM id or name/],
      [['console'], 'console', /Name the VM/],
      [['console', 'a', '--lines', 'x'], 'console', /--lines must be a whole number/],
      [['console', 'a', '--lines'], 'console', /--lines must be a whole number/],
      [['console', 'a', '--lines', '0'], 'console', /between 1 and 100000/],
      [['console', 'a', '--tail'], 'console', /Unknown option --tail/],
      [['console', 'a', 'b'], 'console', /One VM only/],
      [['shell'], 'shell', /Name the VM/],
      [['shell', '--'], 'shell', /Name the VM/],
      [['shell', '-x'], 'shell', /Not a VM id or name/],
      [['dial-stdio', 'extra'], 'dial-stdio', /takes no arguments/],
    ];
    for (const [argv, command, message] of cases) {
      const err = refused(() => parseHostCommand(argv));
      expect(err.kind).toBe('invalid_params');
      expect(err.details).toEqual({ command });
      expect(err.message).toMatch(message);
    }
    expect(refused(() => parseHostCommand(['serve'])).kind).toBe('invalid_params');
    expect(refused(() => parseHostCommand([])).kind).toBe('invalid_params');
  });

  it('refuses to build what the CLI would refuse', () => {
    expect(refused(() => hostCommandArgv({ name: 'vnc', vm: '--socket=/tmp/x' })).kind).toBe('invalid_params');
    expect(refused(() => hostCommandArgv({ name: 'shell', vm: 'a b', command: [] })).kind).toBe('invalid_params');
    expect(
      refused(() => hostCommandArgv({ name: 'console', vm: 'a', lines: 1.5, follow: false, attach: false })).kind,
    ).toBe('invalid_params');
  });
});
