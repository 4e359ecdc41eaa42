import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ConsoleLog } from './consoleLog';
import { ConsolePump } from './consolePump';
import type { ConsoleMarker } from './markers';

// A real FIFO, written the way Firecracker writes its serial_out_path (opened O_RDWR | O_NONBLOCK, a byte
// lost whenever the pipe is full: src/vmm/src/devices/legacy/serial.rs, utils/mod.rs open_file_nonblock).
let dir: string;
const pumps: ConsolePump[] = [];
const writers: number[] = [];

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'firedeck-pump-'));
});
afterEach(() => {
  for (const pump of pumps.splice(0)) pump.stop();
  for (const fd of writers.splice(0)) fs.closeSync(fd);
  fs.rmSync(dir, { recursive: true, force: true });
});

function fifo(): string {
  const file = path.join(dir, 'serial.fifo');
  execFileSync('mkfifo', ['-m', '0600', file]);
  return file;
}

/** Opens the FIFO as Firecracker does; returns the fd and a write that reports what the pipe took. */
function hypervisor(file: string): { fd: number; write(text: string): number } {
  const fd = fs.openSync(file, fs.constants.O_RDWR | fs.constants.O_NONBLOCK);
  writers.push(fd);
  return {
    fd,
    write(text) {
      try {
        return fs.writeSync(fd, text);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'EAGAIN') return 0;
        throw err;
      }
    },
  };
}

interface Seen {
  markers: ConsoleMarker[];
  disconnects: number;
  wait(what: string): Promise<void>;
}

async function pump(file: string, log: ConsoleLog): Promise<Seen> {
  const seen: Seen = { markers: [], disconnects: 0, wait: () => Promise.resolve() };
  const waiters = new Set<() => void>();
  seen.wait = (what) =>
    new Promise((resolve) => {
      const check = (): void => {
        const done =
          what === 'disconnect'
            ? seen.disconnects > 0
            : seen.markers.some((m) => m.type === 'ready' && m.what === what);
        if (done) {
          waiters.delete(check);
          resolve();
        }
      };
      waiters.add(check);
      check();
    });
  const p = new ConsolePump(
    'vm-pump',
    { kind: 'fifo', path: file },
    log,
    path.join(dir, `attach-${pumps.length}.sock`),
    {
      onMarker: (m) => {
        seen.markers.push(m);
        for (const w of [...waiters]) w();
      },
      onDisconnect: () => {
        seen.disconnects++;
        for (const w of [...waiters]) w();
      },
    },
  );
  pumps.push(p);
  await p.start();
  return seen;
}

describe('ConsolePump on a FIFO console', () => {
  it('keeps a flooding guest inside the capped log and still sees the marker after the flood', async () => {
    const file = fifo();
    const fc = hypervisor(file);
    const log = new ConsoleLog(path.join(dir, 'console.log'), 256 * 1024);
    const seen = await pump(file, log);

    let offered = 0;
    let taken = 0;
    const line = `${'x'.repeat(99)}\n`;
    while (offered < 8 * 1024 * 1024) {
      offered += line.length;
      taken += fc.write(line);
      // Let the pump read now and then, as a real reader in another process would.
      if (offered % (64 * 1024) < line.length) await new Promise((r) => setImmediate(r));
    }
    while (fc.write('FIREDECK-READY flood-done\n') === 0) await new Promise((r) => setImmediate(r));
    await seen.wait('flood-done');

    expect(taken).toBeGreaterThan(256 * 1024);
    for (const f of fs.readdirSync(dir).filter((n) => n.startsWith('console.log'))) {
      expect(fs.statSync(path.join(dir, f)).size).toBeLessThanOrEqual(256 * 1024);
    }
    // Nothing but the log, the FIFO (no data on disk) and the attach socket.
    expect(fs.readdirSync(dir).sort()).toEqual(['attach-0.sock', 'console.log', 'console.log.1', 'serial.fifo']);
    expect(fs.statSync(file).size).toBe(0);
  });

  it('ends with the last writer, and what the guest wrote while nobody read is there for the next reader', async () => {
    const file = fifo();
    const fc = hypervisor(file);
    const log = new ConsoleLog(path.join(dir, 'console.log'), 1024 * 1024);
    const first = await pump(file, log);
    fc.write('FIREDECK-READY vm\n');
    await first.wait('vm');

    // The daemon goes away: the hypervisor holds its own read end, so nothing fails and the pipe buffers.
    pumps.pop()!.stop();
    expect(fc.write('FIREDECK-READY sshd\n')).toBeGreaterThan(0);
    // Past what the pipe holds (16 pages on Linux by default) output is lost; the guest does not block.
    let buffered = 'FIREDECK-READY sshd\n'.length;
    for (let n = fc.write('y'.repeat(4096)); n > 0; n = fc.write('y'.repeat(4096))) buffered += n;
    expect(buffered).toBeGreaterThan(60 * 1024);
    expect(buffered).toBeLessThanOrEqual(64 * 1024);
    expect(fc.write('lost\n')).toBe(0);

    const second = await pump(file, new ConsoleLog(path.join(dir, 'console.log'), 1024 * 1024));
    await second.wait('sshd');
    fs.closeSync(writers.pop()!);
    await second.wait('disconnect');
    expect(fs.readFileSync(path.join(dir, 'console.log'), 'utf8')).not.toContain('lost');
  });

  it('refuses a path that is not a FIFO', async () => {
    const file = path.join(dir, 'plain');
    fs.writeFileSync(file, '');
    await expect(pump(file, new ConsoleLog(path.join(dir, 'console.log'), 1024))).rejects.toThrow(/not a FIFO/);
  });
});
