import { execFile, spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CONSOLE_LINE_MAX_CHARS } from '../../src/shared/protocol/vm';
import { callDaemon, type DaemonRig } from '../rig/daemon';
import { startSuiteDaemon, stopSuiteDaemon } from './daemon-helpers';

// No guest boots in this suite: its VM is created stopped. The daemon still makes its bridge and the VM's TAP.
const PREFIX = 'fdt7h';

let daemon: DaemonRig;

beforeAll(async () => {
  daemon = await startSuiteDaemon(PREFIX, '10.213.71.0/24');
});

afterAll(() => stopSuiteDaemon(daemon, PREFIX));

/** Runs `firedeckd dial-stdio` with `input` as its whole stdin (closed right after) and parses what it prints. */
function dialStdio(input: string): Promise<{ code: number | null; frames: Record<string, unknown>[]; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(daemon.firedeckdCommand, ['dial-stdio'], { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => {
      child.kill();
      reject(new Error(`dial-stdio did not exit within 60 s; printed: ${stdout.slice(0, 500)} ${stderr}`));
    }, 60_000);
    child.once('error', reject);
    child.once('close', (code) => {
      clearTimeout(timer);
      const frames = stdout
        .split('\n')
        .filter((l) => l.trim() !== '')
        .map((l) => JSON.parse(l) as Record<string, unknown>);
      resolve({ code, frames, stderr });
    });
    child.stdin.end(input);
  });
}

describe('every reply reaches the client', () => {
  it('dial-stdio whose stdin ends right after a slow call (vm.create) prints its reply, then exits', async () => {
    // vm.create clones the rootfs, makes the TAP and the guest key: real work that ends long after stdin did.
    const create = JSON.stringify({
      jsonrpc: '2.0',
      id: 1,
      method: 'vm.create',
      params: { name: 'halfclose', kind: 'cli', owner: 'alice', image: 'test', start: false },
    });
    const { code, frames, stderr } = await dialStdio(`${create}\n`);
    expect(stderr).toBe('');
    expect(code).toBe(0);
    expect(frames).toHaveLength(1);
    expect(frames[0]).toMatchObject({ id: 1, result: { name: 'halfclose', state: 'stopped' } });
    expect((await daemon.call('vm.list', {})).map((v) => v.name)).toContain('halfclose');
  });

  it("printf '<daemon.info request>\\n' | firedeckd dial-stdio prints the daemon's info", async () => {
    const { code, frames } = await dialStdio('{"jsonrpc":"2.0","id":7,"method":"daemon.info","params":{}}\n');
    expect(code).toBe(0);
    expect(frames).toEqual([
      expect.objectContaining({ id: 7, result: expect.objectContaining({ protocolVersion: 1 }) }),
    ]);
  });

  it('a console log holding one 1.2 MB line without a newline: vm.console.tail answers, firedeckd console shows it', async () => {
    const vm = await daemon.call('vm.create', {
      name: 'longline',
      kind: 'cli',
      owner: 'alice',
      image: 'test',
      start: false,
    });
    // What a guest writing one endless line to its serial console leaves in the log the daemon serves.
    let line = '';
    for (let i = 0; line.length < 1_200_000; i++) line += `<${i}>`;
    fs.appendFileSync(path.join(daemon.stateDir, 'vms', vm.id, 'console.log'), `booted\n${line}`);

    // The rig's client has the frame cap: a reply over it would never resolve (the hang of the issue).
    const tail = await callDaemon(daemon.socketPath, 'vm.console.tail', { id: vm.id, lines: 200 }, 20_000);
    expect(tail.truncated).toBe(true);
    expect(tail.lines.length).toBeGreaterThan(50);
    expect(tail.lines.every((l) => l.length <= CONSOLE_LINE_MAX_CHARS)).toBe(true);
    expect(tail.lines.join('')).toBe(line.slice(-tail.lines.join('').length));

    const { stdout, code } = await new Promise<{ stdout: string; code: number }>((resolve) => {
      execFile(
        daemon.firedeckdCommand,
        ['console', 'longline', '--lines', '500'],
        { timeout: 30_000, maxBuffer: 64 << 20 },
        (err, out) => resolve({ stdout: out, code: err ? Number((err as { code?: number }).code ?? 1) : 0 }),
      );
    });
    expect(code).toBe(0);
    const shown = stdout.split('\n').filter((l) => l !== '');
    expect(shown.every((l) => l.length <= CONSOLE_LINE_MAX_CHARS)).toBe(true);
    expect(shown.join('')).toBe(line.slice(-shown.join('').length));
    expect(shown.join('').length).toBeGreaterThan(500_000);
  });
});
