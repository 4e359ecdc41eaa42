import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { AuthSession, AuthStartParams } from '../../../src/shared/protocol/auth';
import { RpcServer } from '../rpc/server';
import { authCommand, readCode } from './authCommand';
import { DaemonClient } from './daemonClient';

const NOW = '2026-12-04T12:00:00.000Z';
function session(patch: Partial<AuthSession> = {}): AuthSession {
  return {
    id: 'auth-0000abcd',
    user: 'ada',
    provider: 'codex',
    mode: 'headless',
    state: 'awaiting_user_auth',
    startedBy: 'root',
    createdAt: NOW,
    updatedAt: NOW,
    deadline: null,
    browserVmId: null,
    cliVmId: 'vm-0000000a',
    cliVmName: 'ada-cli',
    authorizeUrl: 'https://auth.openai.com/codex/device',
    userCode: 'WXYZ-1234',
    awaitingCode: true,
    result: null,
    error: null,
    retryOf: null,
    transitions: [{ state: 'pending', at: NOW, reason: null, actor: 'root' }],
    ...patch,
  };
}

let dir: string;
let server: RpcServer;
let client: DaemonClient;
const started: AuthStartParams[] = [];
const codes: string[] = [];

beforeEach(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'firedeck-authcli-'));
  server = new RpcServer();
  server.register('auth.start', (p) => {
    started.push(p);
    return session({ provider: p.provider, mode: p.mode ?? 'browser' });
  });
  server.register('auth.submitCode', (p) => {
    codes.push(p.code);
    return session({ state: 'authenticating', awaitingCode: false });
  });
  const socketPath = path.join(dir, 'd.sock');
  await server.listen(socketPath, 0o600);
  client = await DaemonClient.connect(socketPath);
  started.length = 0;
  codes.length = 0;
});
afterEach(async () => {
  client.close();
  await server.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

async function run(args: string[], stdinText?: string): Promise<{ code: number; out: string }> {
  const stdin = new PassThrough();
  const stdout = new PassThrough();
  let out = '';
  stdout.on('data', (c: Buffer) => (out += c.toString()));
  if (stdinText !== undefined) stdin.end(stdinText);
  const code = await authCommand(client, args, { stdin, stdout });
  return { code, out };
}

describe('firedeckd auth: headless logins from the host shell', () => {
  it('start --headless asks the daemon for a headless login and shows its link and code', async () => {
    const r = await run(['start', '--user', 'ada', '--provider', 'codex', '--headless']);
    expect(r.code).toBe(0);
    expect(started).toEqual([{ user: 'ada', provider: 'codex', mode: 'headless' }]);
    expect(r.out).toMatch(/^mode {8}headless$/m);
    expect(r.out).toMatch(/^authorize {3}https:\/\/auth\.openai\.com\/codex\/device$/m);
    expect(r.out).toMatch(/^code {8}WXYZ-1234$/m);
    expect(r.out).toContain('firedeckd auth submit-code auth-0000abcd');
    await run(['start', '--user', 'ada', '--provider', 'selftest']);
    expect(started[1]).toEqual({ user: 'ada', provider: 'selftest' });
  });

  it('submit-code takes the code from stdin, never argv, and refuses an empty stdin', async () => {
    const pasted = randomBytes(9).toString('base64url');
    const r = await run(['submit-code', 'auth-0000abcd'], `\n  ${pasted}  \nignored\n`);
    expect(r.code).toBe(0);
    expect(codes).toEqual([pasted]);
    expect(r.out).toMatch(/^state {7}authenticating$/m);
    expect(r.out).not.toContain(pasted);
    await expect(run(['submit-code', 'auth-0000abcd'], '\n')).rejects.toMatchObject({
      kind: 'invalid_params',
      message: 'auth submit-code: no code on stdin',
    });
    await expect(run(['submit-code'], pasted)).rejects.toMatchObject({ kind: 'invalid_params' });
    expect(codes).toHaveLength(1);
  });
});

describe('readCode', () => {
  it('is the first non-empty line, trimmed, as soon as it is complete; the rest stays unread', async () => {
    const stdin = new PassThrough();
    const code = readCode(stdin);
    stdin.write('\r\n');
    stdin.write('  AB');
    stdin.write('CD-12 \r\nnext');
    await expect(code).resolves.toBe('ABCD-12');
    expect(stdin.listenerCount('data')).toBe(0);
  });

  it('takes a last line without newline at the end of input, null for nothing, and bounds its length', async () => {
    const a = new PassThrough();
    a.end('XYZ');
    await expect(readCode(a)).resolves.toBe('XYZ');
    const b = new PassThrough();
    b.end('  \n');
    await expect(readCode(b)).resolves.toBeNull();
    const c = new PassThrough();
    c.write('x'.repeat(5000));
    await expect(readCode(c)).rejects.toMatchObject({ kind: 'invalid_params' });
  });
});
