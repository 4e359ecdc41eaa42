import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConsoleLog } from '../../host-daemon/src/console/consoleLog';
import { ConsolePump } from '../../host-daemon/src/console/consolePump';
import type { ConsoleMarker } from '../../host-daemon/src/console/markers';
import { makeTempDir } from '../rig/tmp';

/**
 * A full disk under the console log (a real 64 KiB tmpfs): the pump keeps the console flowing to its followers
 * and markers, says so once, and the daemon process lives on.
 */
describe('console pump on a full disk', () => {
  let dir: string;
  let logDir: string;
  let mounted = false;

  beforeAll(() => {
    dir = makeTempDir('console-full');
    logDir = path.join(dir, 'log');
    fs.mkdirSync(logDir);
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', logDir]);
    mounted = true;
  });

  afterAll(() => {
    if (mounted) execFileSync('umount', [logDir]);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('keeps following and scanning when the log cannot be written, and reports that once', async () => {
    const serialPath = path.join(dir, 'serial.sock');
    // The hypervisor's end of the serial port.
    let connected: (socket: net.Socket) => void = () => undefined;
    const guestConnected = new Promise<net.Socket>((resolve) => (connected = resolve));
    const server = net.createServer((socket) => {
      server.close();
      connected(socket);
    });
    await new Promise<void>((resolve) => server.listen(serialPath, resolve));

    const errors: { what: string; err: unknown }[] = [];
    let sawReady: (m: ConsoleMarker) => void = () => undefined;
    const ready = new Promise<ConsoleMarker>((resolve) => (sawReady = resolve));
    const pump = new ConsolePump(
      'vm-00000000000000aa',
      { kind: 'unix-socket', path: serialPath },
      new ConsoleLog(path.join(logDir, 'console.log'), 10 * 1024 * 1024),
      path.join(dir, 'attach.sock'),
      {
        onMarker: (m) => sawReady(m),
        onDisconnect: () => undefined,
        onError: (what, err) => errors.push({ what, err }),
      },
    );
    let followed = 0;
    pump.follow((chunk) => (followed += chunk.length));
    await pump.start();
    const guest = await guestConnected;
    try {
      const flood = Buffer.alloc(256 * 1024, 'x'.charCodeAt(0));
      const line = Buffer.from('\nFIREDECK-READY vm\n');
      guest.write(flood);
      guest.write(line);
      expect(await ready).toEqual({ type: 'ready', what: 'vm' });
      expect(followed).toBe(flood.length + line.length);
      expect(errors.map((e) => e.what)).toEqual(['log']);
      expect((errors[0]!.err as NodeJS.ErrnoException).code).toBe('ENOSPC');
    } finally {
      guest.destroy();
      pump.stop();
    }
  });
});
