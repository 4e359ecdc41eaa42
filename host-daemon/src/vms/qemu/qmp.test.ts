import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { QmpSession } from './qmp';

interface Command {
  execute: string;
  id?: unknown;
}

/**
 * A socket that speaks QMP as QEMU does (greeting, `qmp_capabilities`, a reply per command echoing its `id`,
 * in order); what it answers to every other command, and when, is up to `onCommand`.
 */
class FakeQmp {
  readonly server: net.Server;
  onCommand: (cmd: Command, reply: (cmd: Command, ret: unknown) => void) => void = () => undefined;

  constructor(readonly socketPath: string) {
    this.server = net.createServer((socket) => {
      const reply = (cmd: Command, ret: unknown): void => {
        socket.write(JSON.stringify(cmd.id === undefined ? { return: ret } : { return: ret, id: cmd.id }) + '\r\n');
      };
      socket.write('{"QMP": {"version": {"qemu": {"micro": 0, "minor": 2, "major": 8}}, "capabilities": ["oob"]}}\r\n');
      let buffer = '';
      socket.on('data', (chunk: Buffer) => {
        buffer += chunk.toString('utf8');
        let nl: number;
        while ((nl = buffer.indexOf('\n')) !== -1) {
          const cmd = JSON.parse(buffer.slice(0, nl)) as Command;
          buffer = buffer.slice(nl + 1);
          if (cmd.execute === 'qmp_capabilities') reply(cmd, {});
          else this.onCommand(cmd, reply);
        }
      });
      socket.on('error', () => undefined);
    });
  }

  listen(): Promise<void> {
    return new Promise((resolve) => this.server.listen(this.socketPath, resolve));
  }
}

let dir: string;
let fake: FakeQmp;
let session: QmpSession | null;

beforeEach(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'firedeck-qmp-'));
  fake = new FakeQmp(path.join(dir, 'qmp.sock'));
  await fake.listen();
  session = null;
});

afterEach(async () => {
  session?.close();
  await new Promise<void>((resolve) => fake.server.close(() => resolve()));
  fs.rmSync(dir, { recursive: true, force: true });
});

describe('QmpSession', () => {
  it('gives the next command its own reply when a timed-out command is answered late', async () => {
    let held: Command | null = null;
    fake.onCommand = (cmd, reply) => {
      if (cmd.execute === 'query-status' && held === null) {
        held = cmd; // answered only after its caller gave up, just before the next command's reply
        return;
      }
      reply(held!, { status: 'running', late: true });
      reply(cmd, { name: 'alice-cli' });
    };
    session = await QmpSession.open(fake.socketPath);
    await expect(session.execute('query-status', undefined, 50)).rejects.toMatchObject({ kind: 'timeout' });
    expect(await session.execute('query-name')).toEqual({ name: 'alice-cli' });
    // And the session keeps pairing replies after that.
    fake.onCommand = (cmd, reply) => reply(cmd, { status: 'paused' });
    expect(await session.execute('query-status')).toEqual({ status: 'paused' });
  });

  it('gives the next command its own reply when a timed-out command is never answered', async () => {
    fake.onCommand = (cmd, reply) => {
      if (cmd.execute === 'query-status') return; // dropped: no reply ever comes
      reply(cmd, { name: 'alice-cli' });
    };
    session = await QmpSession.open(fake.socketPath);
    await expect(session.execute('query-status', undefined, 50)).rejects.toMatchObject({ kind: 'timeout' });
    expect(await session.execute('query-name', undefined, 2000)).toEqual({ name: 'alice-cli' });
  });
});
