import fs from 'node:fs';
import type net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { DaemonEvent } from '../../../src/shared/protocol/events';
import type { Vm } from '../../../src/shared/protocol/vm';
import { qmpServer } from './testing/qmpServer';
import { VmHealthMonitor, type HealthTarget } from './vmHealth';

/**
 * A unix socket that speaks QMP as QEMU does (greeting, `qmp_capabilities`, `query-status`), and can be
 * stalled as `kill -STOP` stalls QEMU: connections are still accepted (the kernel queues them) but nothing is
 * read or written until it resumes, when everything held is answered in order.
 */
class StallableQmp {
  readonly server: net.Server;
  stalled = false;
  queries = 0;
  private readonly held: (() => void)[] = [];

  constructor(readonly socketPath: string) {
    this.server = qmpServer({
      reply: (cmd) => {
        if (cmd.execute === 'query-status') this.queries++;
        return cmd.execute === 'query-status' ? { status: 'running', running: true } : {};
      },
      gate: (step) => this.run(step),
    });
  }

  listen(): Promise<void> {
    return new Promise((resolve) => this.server.listen(this.socketPath, resolve));
  }

  resume(): void {
    this.stalled = false;
    for (const f of this.held.splice(0)) f();
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.server.close(() => resolve()));
  }

  private run(f: () => void): void {
    if (this.stalled) this.held.push(f);
    else f();
  }
}

const VM: Vm = {
  id: 'vm-00000000000000a1',
  name: 'wedgy',
  kind: 'cli',
  owner: 'alice',
  image: 'test@1',
  driver: 'qemu',
  vcpus: 1,
  memoryMib: 256,
  diskMib: 1024,
  address: null,
  tap: null,
  mac: null,
  pid: 1234,
  state: 'running',
  ready: ['vm'],
  createdAt: '2026-01-01T00:00:00.000Z',
  updatedAt: '2026-01-01T00:00:00.000Z',
  startedAt: '2026-01-01T00:00:00.000Z',
  expiresAt: null,
  lastError: null,
  unresponsiveSince: null,
};

const DEADLINE_MS = 300;
const INTERVAL_MS = 100;

let dir: string;
let qmp: StallableQmp;
let monitor: VmHealthMonitor;
let targets: HealthTarget[];
let vm: Vm | null;
let events: DaemonEvent[];
let waiters: (() => void)[];

/** Resolves with the next `vm.health` event (no sleeps: the monitor's own emit wakes it). */
function nextHealth(): Promise<Vm> {
  const seen = events.length;
  return new Promise((resolve) => {
    const check = (): void => {
      const e = events.slice(seen).find((x) => x.type === 'vm.health');
      if (e?.type === 'vm.health') resolve(e.vm);
      else waiters.push(check);
    };
    check();
  });
}

beforeEach(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'firedeck-health-'));
  qmp = new StallableQmp(path.join(dir, 'qmp.sock'));
  await qmp.listen();
  targets = [{ id: VM.id, qmpSocket: qmp.socketPath }];
  vm = { ...VM };
  events = [];
  waiters = [];
  monitor = new VmHealthMonitor({
    targets: () => targets,
    setUnresponsive: (id, since) => {
      if (vm === null || id !== vm.id) return null;
      vm = { ...vm, unresponsiveSince: since };
      return vm;
    },
    emit: (event) => {
      events.push(event);
      for (const w of waiters.splice(0)) w();
    },
    log: () => undefined,
    intervalMs: INTERVAL_MS,
    deadlineMs: DEADLINE_MS,
  });
});

afterEach(async () => {
  monitor.close();
  qmp.resume();
  await qmp.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

/** Resolves once the fake has answered `n` more `query-status` probes. */
async function probesAnswered(n: number): Promise<void> {
  const want = qmp.queries + n;
  while (qmp.queries < want) await new Promise((r) => setImmediate(r));
}

describe('VmHealthMonitor', () => {
  it('leaves a VM that answers alone', async () => {
    monitor.start();
    await probesAnswered(3);
    expect(events).toEqual([]);
    expect(vm?.unresponsiveSince).toBeNull();
  });

  it('flags a VM whose monitor misses the deadline, without blocking, and clears it when it answers', async () => {
    monitor.start();
    await probesAnswered(1);
    qmp.stalled = true;
    const stalledAt = Date.now();
    // While the probe hangs, the event loop (and so every other call) keeps turning: a tick returns at once.
    const flagged = nextHealth();
    const t0 = performance.now();
    monitor.tick();
    expect(performance.now() - t0).toBeLessThan(20);
    const bad = await flagged;
    expect(bad.unresponsiveSince).not.toBeNull();
    expect(Date.now() - stalledAt).toBeGreaterThanOrEqual(DEADLINE_MS - INTERVAL_MS - 20);
    // The time is when the missed probe began, not when the deadline passed.
    expect(Date.parse(bad.unresponsiveSince!)).toBeLessThanOrEqual(Date.now() - DEADLINE_MS + 20);
    expect(monitor.unresponsive()).toEqual([VM.id]);
    // Flagged once, not once per missed probe.
    await new Promise((r) => setTimeout(r, DEADLINE_MS * 2));
    expect(events.filter((e) => e.type === 'vm.health')).toHaveLength(1);

    const cleared = nextHealth();
    qmp.resume();
    const good = await cleared;
    expect(good.unresponsiveSince).toBeNull();
    expect(monitor.unresponsive()).toEqual([]);
  });

  it('clears the flag of a VM that is no longer probed (stopped, destroyed)', async () => {
    qmp.stalled = true;
    monitor.start();
    expect((await nextHealth()).unresponsiveSince).not.toBeNull();
    targets = [];
    const cleared = nextHealth();
    monitor.tick();
    expect((await cleared).unresponsiveSince).toBeNull();
  });

  it('does not take a socket that refuses (a VM going away) for an unresponsive one', async () => {
    targets = [{ id: VM.id, qmpSocket: path.join(dir, 'nothing-listens.sock') }];
    monitor.start();
    // Several rounds past the deadline.
    await new Promise((r) => setTimeout(r, DEADLINE_MS + INTERVAL_MS * 3));
    expect(events).toEqual([]);
  });
});
