import { Client, type ClientChannel } from 'ssh2';
import crypto from 'node:crypto';
import os from 'node:os';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeFrame } from '../../src/shared/rpc/framing';
import { DaemonInfo } from '../../src/shared/protocol/daemon';
import { FIREDECK_VERSION } from '../../src/shared/version';
import { collectFrames, startDaemon, type DaemonRig } from '../rig/daemon';
import { startSshd, type Sshd } from '../rig/sshd';

let daemon: DaemonRig;
let sshd: Sshd;

beforeAll(async () => {
  daemon = await startDaemon();
  sshd = await startSshd({ pathPrepend: [daemon.binDir] });
});

afterAll(async () => {
  await sshd?.stop();
  await daemon?.stop();
});

function fingerprint(key: Buffer): string {
  return `SHA256:${crypto.createHash('sha256').update(key).digest('base64').replace(/=+$/, '')}`;
}

function connect(expectedFingerprint: string): Promise<Client> {
  return new Promise((resolve, reject) => {
    const client = new Client();
    client.once('ready', () => resolve(client));
    client.once('error', reject);
    client.connect({
      host: sshd.host,
      port: sshd.port,
      username: sshd.user,
      privateKey: sshd.clientPrivateKey,
      hostVerifier: (key: Buffer) => fingerprint(key) === expectedFingerprint,
    });
  });
}

function exec(client: Client, command: string): Promise<ClientChannel> {
  return new Promise((resolve, reject) => client.exec(command, (err, ch) => (err ? reject(err) : resolve(ch))));
}

/** Sends frames on the dial-stdio channel and collects `count` answers. */
function converse(channel: ClientChannel, lines: string[], count: number): Promise<Record<string, unknown>[]> {
  let stderr = '';
  channel.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const frames = collectFrames(channel, count, { timeoutMs: 60_000, context: () => `stderr: ${stderr}` });
  for (const l of lines) channel.write(encodeFrame(l));
  return frames;
}

describe('walking skeleton: app → ssh2 → real sshd → firedeckd dial-stdio → daemon socket', () => {
  it('calls daemon.info over SSH with a verified host key', async () => {
    const client = await connect(sshd.hostKeyFingerprint);
    try {
      const channel = await exec(client, 'firedeckd dial-stdio');
      const [reply] = await converse(channel, ['{"jsonrpc":"2.0","id":1,"method":"daemon.info","params":{}}'], 1);
      const info = DaemonInfo.parse((reply as { result: unknown }).result);
      expect(info.version).toBe(FIREDECK_VERSION);
      expect(info.hostname).toBe(os.hostname());
      expect(info.drivers.map((d) => d.name).sort()).toEqual(['firecracker', 'qemu']);
      const qemu = info.drivers.find((d) => d.name === 'qemu')!;
      expect(qemu.available).toBe(true);
      expect(qemu.accel).toBe('tcg');
      // DaemonInfo.parse above holds every driver to its graceful-stop report; QEMU's is the ACPI button.
      expect(qemu.gracefulStop).toEqual({ support: 'supported', reason: 'ACPI power button (QMP system_powerdown)' });
      channel.end();
    } finally {
      client.end();
    }
  });

  it('answers -32700, -32601 and -32602 over the same channel and keeps serving', async () => {
    const client = await connect(sshd.hostKeyFingerprint);
    try {
      const channel = await exec(client, 'firedeckd dial-stdio');
      const frames = await converse(
        channel,
        [
          '{"jsonrpc":"2.0","id":1,"method":',
          '{"jsonrpc":"2.0","id":2,"method":"no.such.method","params":{}}',
          '{"jsonrpc":"2.0","id":3,"method":"vm.get","params":{"id":"vm/../../etc"}}',
          '{"jsonrpc":"2.0","id":4,"method":"daemon.info","params":{}}',
        ],
        4,
      );
      expect(frames.map((f) => (f.error as { code?: number } | undefined)?.code ?? 'ok')).toEqual([
        -32700,
        -32601,
        -32602,
        'ok',
      ]);
      channel.end();
    } finally {
      client.end();
    }
  });

  it('refuses a host whose key does not match the pinned fingerprint, before authentication', async () => {
    const wrong = fingerprint(crypto.randomBytes(51));
    await expect(connect(wrong)).rejects.toThrow(/verification failed/i);
    expect(daemon.log()).not.toMatch(/hello/);
  });

  it('dial-stdio explains a daemon that is not running', { timeout: 20_000 }, async () => {
    const client = await connect(sshd.hostKeyFingerprint);
    try {
      const channel = await exec(client, `firedeckd dial-stdio --socket ${daemon.runDir}/absent.sock`);
      let stderr = '';
      channel.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      const code = await new Promise<number>((resolve) => channel.on('exit', (c: number) => resolve(c)));
      expect(code).toBe(1);
      expect(stderr).toMatch(/firedeckd is not running/);
    } finally {
      client.end();
    }
  });
});
