import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DaemonEvent } from '../../src/shared/protocol/events';
import type { Vm } from '../../src/shared/protocol/vm';
import type { DaemonRig } from '../rig/daemon';
import { consoleAttach, pidAlive, startSuiteDaemon, stopSuiteDaemon, subscribeEvents } from './daemon-helpers';

// Fault suite, `kill -STOP` of a hypervisor: this file's own prefix and subnet.
const PREFIX = 'fdfs';
const CIDR = '10.213.102.0/24';

let daemon: DaemonRig | undefined;
let stoppedPid: number | null = null;

beforeAll(async () => {
  daemon = await startSuiteDaemon(PREFIX, CIDR);
});

afterAll(async () => {
  // Never leave a stopped QEMU behind, whatever failed.
  if (stoppedPid !== null && pidAlive(stoppedPid)) process.kill(stoppedPid, 'SIGCONT');
  await stopSuiteDaemon(daemon, PREFIX);
});

/** Runs `fn` and fails unless it answers within `ms`. */
async function within<T>(ms: number, what: string, fn: () => Promise<T>): Promise<T> {
  const t0 = performance.now();
  const result = await fn();
  const took = performance.now() - t0;
  expect(took, `${what} took ${Math.round(took)} ms`).toBeLessThan(ms);
  return result;
}

const healthOf =
  (id: string, unresponsive: boolean) =>
  (e: DaemonEvent): e is Extract<DaemonEvent, { type: 'vm.health' }> =>
    e.type === 'vm.health' && e.vm.id === id && (e.vm.unresponsiveSince !== null) === unresponsive;

describe('fault: kill -STOP of a hypervisor', { timeout: 300_000 }, () => {
  it('keeps the daemon answering, reports the VM unresponsive, and it recovers after kill -CONT', async () => {
    const d = daemon!;
    const vm: Vm = await d.call('vm.create', {
      name: 'fs-a',
      kind: 'cli',
      owner: 'ops',
      image: 'test',
      memoryMib: 256,
    });
    await d.call('vm.waitReady', { id: vm.id, timeoutSeconds: 240 });
    const events = await subscribeEvents(d.socketPath);
    try {
      expect((await d.call('vm.list', {})).find((v) => v.id === vm.id)?.unresponsiveSince).toBeNull();

      const stoppedAt = Date.now();
      process.kill(vm.pid!, 'SIGSTOP');
      stoppedPid = vm.pid!;
      // Reported unresponsive: the 3 s QMP deadline, after at most a 2 s wait for the next probe.
      const flagged = await events.waitFor(healthOf(vm.id, true), 15_000, 'vm.health unresponsive');
      const flaggedAfterMs = Date.now() - stoppedAt;
      expect(Date.parse(flagged.vm.unresponsiveSince!)).toBeGreaterThanOrEqual(stoppedAt - 2500);
      // Meanwhile (and after) every other call answers at once.
      for (let i = 0; i < 3; i++) {
        const list = await within(1000, 'vm.list', () => d.call('vm.list', {}));
        expect(list.find((v) => v.id === vm.id)?.unresponsiveSince).toBe(flagged.vm.unresponsiveSince);
        await within(1000, 'daemon.info', () => d.call('daemon.info', {}));
        await within(1000, 'vm.get', () => d.call('vm.get', { id: vm.id }));
      }
      expect((await d.call('vm.get', { id: vm.id })).state).toBe('running');

      const continuedAt = Date.now();
      process.kill(vm.pid!, 'SIGCONT');
      stoppedPid = null;
      const cleared = await events.waitFor(healthOf(vm.id, false), 15_000, 'vm.health responsive again');
      expect(cleared.vm.state).toBe('running');
      const clearedAfterMs = Date.now() - continuedAt;
      expect((await d.call('vm.get', { id: vm.id })).unresponsiveSince).toBeNull();

      // The VM still works: its shell answers on the console.
      const attach = await consoleAttach(path.join(d.runDir, 'vms', vm.id, 'console.sock'));
      try {
        attach.write('echo after-cont-$((40 + 2))\n');
        await attach.waitFor(/after-cont-42/, 30_000);
      } finally {
        attach.close();
      }
      expect((await d.call('vm.get', { id: vm.id })).pid).toBe(vm.pid);
      console.log(
        `[fault-hypervisor-stop] flagged ${flaggedAfterMs} ms after SIGSTOP, cleared ${clearedAfterMs} ms after SIGCONT`,
      );
    } finally {
      events.close();
    }
  });
});
