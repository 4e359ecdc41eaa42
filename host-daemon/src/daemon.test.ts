import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { DaemonInfo } from '../../src/shared/protocol/daemon';
import { LineFramer } from '../../src/shared/rpc/framing';
import { defaultConfig } from './config';
import { createDaemon, type Daemon } from './daemon';
import { createVmDrivers } from './vms/vmDrivers';

let dir: string;
let daemon: Daemon;
let socketPath: string;
let probes: Map<string, number>;

/** One `daemon.info` request on its own connection, as a client of the socket sends it. */
function daemonInfo(id: number): Promise<DaemonInfo> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(socketPath);
    const framer = new LineFramer(1024 * 1024);
    socket.once('connect', () => socket.write(`${JSON.stringify({ jsonrpc: '2.0', id, method: 'daemon.info' })}\n`));
    socket.on('data', (chunk: Buffer) => {
      for (const ev of framer.push(chunk)) {
        if (ev.type !== 'frame') continue;
        const frame = JSON.parse(ev.text) as { id?: number; result?: DaemonInfo; error?: unknown };
        if (frame.id !== id) continue;
        socket.end();
        if (frame.result) resolve(frame.result);
        else reject(new Error(`daemon.info failed: ${JSON.stringify(frame.error)}`));
      }
    });
    socket.once('error', reject);
  });
}

beforeEach(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'firedeck-daemon-'));
  socketPath = path.join(dir, 'run', 'firedeckd.sock');
  const config = {
    ...defaultConfig(),
    stateDir: path.join(dir, 'state'),
    runDir: path.join(dir, 'run'),
    socketPath,
  };
  fs.mkdirSync(config.runDir, { recursive: true });
  // The real drivers of this host, each probe counted: Firecracker's and QEMU's probes fork their binaries.
  probes = new Map();
  const drivers = createVmDrivers(config, process.env);
  for (const driver of drivers) {
    const probe = driver.availability.bind(driver);
    driver.availability = () => {
      probes.set(driver.name, (probes.get(driver.name) ?? 0) + 1);
      return probe();
    };
  }
  daemon = createDaemon(config, { log: () => undefined, drivers });
  // Only the socket: daemon.info does not wait for the reconciliation, which would set up the VM bridge.
  await daemon.server.listen(socketPath, 0o600);
});

afterEach(async () => {
  await daemon.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

describe('daemon.info', () => {
  it('probes each driver once, however often and however concurrently it is asked', async () => {
    const first = await daemonInfo(1);
    const more = await Promise.all([daemonInfo(2), daemonInfo(3), daemonInfo(4)]);
    const last = await daemonInfo(5);
    expect(Object.fromEntries(probes)).toEqual({ firecracker: 1, qemu: 1 });
    for (const info of [...more, last]) {
      expect(info.drivers).toEqual(first.drivers);
      expect(info.defaultDriver).toBe(first.defaultDriver);
    }
    expect(first.drivers.map((d) => d.name)).toEqual(['firecracker', 'qemu']);
    expect(first.pid).toBe(process.pid);
  });
});
