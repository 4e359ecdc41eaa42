import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { defaultConfig } from '../config';
import type { CommandIo } from './consoleCommand';
import { runHostCli, type HostCliCommand } from './hostCli';

/** Runs the CLI against a socket that does not exist: only what is refused before connecting can pass. */
async function run(command: HostCliCommand, argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  let out = '';
  let err = '';
  stdout.on('data', (c: Buffer) => (out += c.toString()));
  stderr.on('data', (c: Buffer) => (err += c.toString()));
  const io = { stdin: new PassThrough(), stdout, stderr } as unknown as CommandIo;
  const config = { ...defaultConfig({}), socketPath: '/nonexistent/firedeckd.sock' };
  const code = await runHostCli(command, argv, config, io);
  return { code, stdout: out, stderr: err };
}

describe('firedeckd console|shell|vnc|dial-stdio argv (the grammar of src/shared/protocol/hostCommand.ts)', () => {
  it('answers bad input with its usage and exit code 2, before it reaches for the socket', async () => {
    const vnc = await run('vnc', []);
    expect(vnc.code).toBe(2);
    expect(vnc.stderr).toMatch(/^usage: firedeckd vnc <vm>/);
    expect(vnc.stderr).toMatch(/firedeckd vnc: Name the VM\n$/);
    const lines = await run('console', ['web', '--lines', 'many']);
    expect(lines.code).toBe(2);
    expect(lines.stderr).toMatch(/^usage: firedeckd console <vm>/);
    expect(lines.stderr).toMatch(/--lines must be a whole number/);
    expect((await run('console', ['web', '--tail'])).code).toBe(2);
    expect((await run('dial-stdio', ['now'])).code).toBe(2);
    expect((await run('shell', ['--socket', '/x'])).stderr).toMatch(/Name the VM/);
  });

  it('prints a command usage on --help with exit code 0', async () => {
    for (const command of ['console', 'shell', 'vnc', 'dial-stdio'] as const) {
      const r = await run(command, ['--help']);
      expect(r.code).toBe(0);
      expect(r.stdout).toMatch(new RegExp(`^usage: firedeckd ${command}`));
    }
  });

  it('takes a well-formed command to the socket (and says it cannot reach it)', async () => {
    await expect(run('vnc', ['desk'])).resolves.toMatchObject({ code: 1, stderr: /Cannot reach firedeckd/ });
    await expect(run('console', ['web', '-f'])).rejects.toMatchObject({ kind: 'unavailable' });
  });
});
