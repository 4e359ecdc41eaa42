import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { ChannelFrame, ChannelFrameReader, encodeChannelFrame, encodeExit } from '../../../src/shared/protocol/channel';
import { encodeFrame } from '../../../src/shared/rpc/framing';
import { successFrame } from '../../../src/shared/rpc/jsonrpc';
import { consoleCommand, type CommandIo } from './consoleCommand';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

/**
 * A daemon socket that answers `channel.open` with the reply and the `live` frame in one write (as the real
 * daemon does when the console's tail is empty or already flushed), then reports the client's data frames.
 */
async function fakeDaemon(): Promise<{ socketPath: string; received: Promise<string>; close(): void }> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'firedeck-console-cmd-'));
  dirs.push(dir);
  const socketPath = path.join(dir, 'firedeckd.sock');
  let gotData: (text: string) => void = () => undefined;
  const received = new Promise<string>((resolve) => (gotData = resolve));
  const server = net.createServer((socket) => {
    let head = '';
    let open = false;
    const reader = new ChannelFrameReader();
    socket.on('data', (chunk: Buffer) => {
      if (!open) {
        head += chunk.toString('utf8');
        if (!head.includes('"channel.open"') || !head.endsWith('\n')) return;
        open = true;
        const reply = encodeFrame(successFrame(1, { vmId: 'vm-0123456789abcdef', vmName: 'demo', kind: 'console' }));
        socket.write(Buffer.concat([Buffer.from(reply), encodeChannelFrame(ChannelFrame.live)]));
        return;
      }
      for (const ev of reader.push(chunk)) {
        if (ev.type === 'frame' && ev.frameType === ChannelFrame.data) {
          gotData(Buffer.from(ev.payload).toString('utf8'));
          socket.end(encodeExit({ code: 0, signal: null, error: null }));
        }
      }
    });
    socket.on('error', () => undefined);
  });
  await new Promise<void>((resolve) => server.listen(socketPath, resolve));
  return { socketPath, received, close: () => server.close() };
}

describe('firedeckd console --attach', () => {
  it('sends what is typed even when the live frame comes in the same chunk as the reply', async () => {
    const daemon = await fakeDaemon();
    try {
      const stdin = new PassThrough();
      const stderr = new PassThrough();
      let errText = '';
      stderr.on('data', (c: Buffer) => (errText += c.toString()));
      const io = { stdin, stdout: new PassThrough(), stderr } as unknown as CommandIo;
      const done = consoleCommand(
        daemon.socketPath,
        { name: 'console', vm: 'demo', lines: null, follow: false, attach: true },
        io,
      );
      stdin.write('echo typed\n');
      // A failure says why: the command ended first (with its error), or what it printed while nothing came.
      const ended = done.then(
        (code) => `(the command ended with ${code} before anything was sent)`,
        (err: unknown) => `(the command failed before anything was sent: ${String(err)})`,
      );
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<string>((resolve) => {
        timer = setTimeout(() => resolve(`(nothing within 5 s; stderr ${JSON.stringify(errText)})`), 5000);
      });
      try {
        expect(await Promise.race([daemon.received, ended, timeout])).toBe('echo typed\n');
      } finally {
        clearTimeout(timer);
      }
      expect(await done).toBe(0);
      expect(errText).toContain('[attached to demo; Ctrl-] detaches]');
    } finally {
      daemon.close();
    }
  });
});
