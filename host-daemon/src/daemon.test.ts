import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { DaemonInfo } from '../../src/shared/protocol/daemon';
import { DaemonClient } from './cli/daemonClient';
import { defaultConfig } from './config';
import { createDaemon, type Daemon } from './daemon';
import { createVmDrivers } from './vms/vmDrivers';

let dir: string;
let daemon: Daemon;
let socketPath: string;
let probes: Map<string, number>;

/** `daemon.info` as the host CLI asks it: on a connection of its own. */
async function daemonInfo(): Promise<DaemonInfo> {
  const client = await DaemonClient.connect(socketPath);
  try {
    return await client.call('daemon.info', {});
  } finally {
    client.close();
  }
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
    const first = await daemonInfo();
    const more = await Promise.all([daemonInfo(), daemonInfo(), daemonInfo()]);
    const client = await DaemonClient.connect(socketPath);
    const sameLink = await Promise.all([client.call('daemon.info', {}), client.call('daemon.info', {})]);
    client.close();
    const last = await daemonInfo();
    expect(Object.fromEntries(probes)).toEqual({ firecracker: 1, qemu: 1 });
    for (const info of [...more, ...sameLink, last]) {
      expect(info.drivers).toEqual(first.drivers);
      expect(info.defaultDriver).toBe(first.defaultDriver);
    }
    expect(first.drivers.map((d) => d.name)).toEqual(['firecracker', 'qemu']);
    expect(first.pid).toBe(process.pid);
  });
});
