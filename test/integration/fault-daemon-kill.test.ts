import { execFileSync } from 'node:child_process';
import { randomInt } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Vm } from '../../src/shared/protocol/vm';
import { findProcesses } from '../../host-daemon/src/system/processes';
import { startDaemon, type DaemonRig } from '../rig/daemon';
import { installTestImage } from '../rig/testImage';
import { linksWithPrefix, pidAlive, removeLinks, stopSuiteDaemon } from './daemon-helpers';

// Fault suite, `kill -9` of the daemon in the middle of an operation: this file's own prefix and subnet.
const PREFIX = 'fdfk';
const CIDR = '10.213.101.0/24';

/** Replays a failure: the seed and round count a run prints (`FIREDECK_FAULT_SEED`, `FIREDECK_FAULT_ROUNDS`). */
const SEED = process.env.FIREDECK_FAULT_SEED ? Number(process.env.FIREDECK_FAULT_SEED) : randomInt(1, 2 ** 31);
const ROUNDS = process.env.FIREDECK_FAULT_ROUNDS ? Number(process.env.FIREDECK_FAULT_ROUNDS) : 5;
const MAX_DELAY_MS = 1000;

/** mulberry32: a small seeded generator, so that a seed replays the same rounds. */
function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

type Op = 'create' | 'start' | 'stop' | 'destroy';

let daemon: DaemonRig | undefined;

beforeAll(async () => {
  removeLinks(PREFIX);
  daemon = await startDaemon({
    env: {
      FIREDECK_BRIDGE: `${PREFIX}br0`,
      FIREDECK_CIDR: CIDR,
      FIREDECK_DEVICE_PREFIX: PREFIX,
      // A stop the daemon is killed in is finished by the next one: keep its power-button budget short.
      FIREDECK_STOP_TIMEOUT_SECONDS: '20',
    },
  });
  await installTestImage(daemon.stateDir);
});

afterAll(() => stopSuiteDaemon(daemon, PREFIX));

const LIVE = new Set(['booting', 'running', 'stopping']);

/** The taps named in the daemon's nftables tables (its glob `fdfktap*` aside). */
function tapsInRules(): Set<string> {
  const taps = new Set<string>();
  for (const family of ['bridge', 'inet']) {
    let text = '';
    try {
      text = execFileSync('nft', ['list', 'table', family, `firedeck-${PREFIX}`], { encoding: 'utf8' });
    } catch {
      continue;
    }
    for (const m of text.matchAll(new RegExp(`"(${PREFIX}tap\\d+)"`, 'g'))) taps.add(m[1]!);
  }
  return taps;
}

/** What the machine must agree with after a restart: the store (via the daemon) against /proc, links, nft, dirs. */
async function assertStoreEqualsMachine(d: DaemonRig, label: string): Promise<Vm[]> {
  const db = new Database(path.join(d.stateDir, 'firedeck.db'), { readonly: true, fileMustExist: true });
  try {
    expect(db.pragma('integrity_check', { simple: true }), `${label}: integrity_check`).toBe('ok');
  } finally {
    db.close();
  }
  const vms = await d.call('vm.list', {});
  for (const vm of vms) {
    // Nothing half-done stays: reconcile rolls back creates and finishes stops and destroys.
    expect(['creating', 'stopping', 'destroying'], `${label}: ${vm.name} is ${vm.state}`).not.toContain(vm.state);
  }
  const live = vms.filter((v) => LIVE.has(v.state));
  for (const vm of live) {
    expect(vm.pid, `${label}: ${vm.name} has a pid`).not.toBeNull();
    expect(pidAlive(vm.pid!), `${label}: ${vm.name}'s pid ${vm.pid} lives`).toBe(true);
    expect(fs.readFileSync(`/proc/${vm.pid}/cmdline`, 'utf8'), `${label}: pid ${vm.pid} is ${vm.name}'s`).toContain(
      `firedeck-${vm.id}`,
    );
    expect(vm.tap, `${label}: ${vm.name} has a TAP`).not.toBeNull();
  }
  for (const vm of vms.filter((v) => !LIVE.has(v.state))) expect(vm.pid).toBeNull();
  // No hypervisor the store does not know.
  const vmRunRoot = path.join(d.runDir, 'vms') + path.sep;
  const hypervisors = [...findProcesses(`\0${vmRunRoot}`).keys()].sort();
  expect(hypervisors, `${label}: hypervisors`).toEqual(live.map((v) => v.pid!).sort());
  // TAPs and firewall rules: exactly the leases the store holds.
  const storeTaps = vms
    .map((v) => v.tap)
    .filter((t): t is string => t !== null)
    .sort();
  expect(linksWithPrefix(`${PREFIX}tap`).sort(), `${label}: TAPs`).toEqual(storeTaps);
  expect([...tapsInRules()].sort(), `${label}: nftables rules`).toEqual(storeTaps);
  // Files: a state dir for every VM (with its disk), a run dir for every live one, nothing else.
  const stateVms = fs.existsSync(path.join(d.stateDir, 'vms')) ? fs.readdirSync(path.join(d.stateDir, 'vms')) : [];
  expect(stateVms.sort(), `${label}: state dirs`).toEqual(vms.map((v) => v.id).sort());
  for (const vm of vms) {
    const files = fs.readdirSync(path.join(d.stateDir, 'vms', vm.id));
    expect(
      files.some((f) => f.startsWith('rootfs.')),
      `${label}: ${vm.name} has its disk (${files.join(' ')})`,
    ).toBe(true);
  }
  const runVms = fs.existsSync(path.join(d.runDir, 'vms')) ? fs.readdirSync(path.join(d.runDir, 'vms')) : [];
  expect(runVms.sort(), `${label}: run dirs`).toEqual(live.map((v) => v.id).sort());
  return vms;
}

describe('fault: kill -9 of the daemon during create / start / stop / destroy', { timeout: 900_000 }, () => {
  it(`survives ${ROUNDS} seeded rounds (FIREDECK_FAULT_SEED=${SEED})`, async () => {
    const d = daemon!;
    const random = seeded(SEED);
    console.log(`[fault-daemon-kill] seed ${SEED}, ${ROUNDS} rounds (replay: FIREDECK_FAULT_SEED=${SEED})`);
    const t0 = Date.now();
    // A VM that runs through every round: it must be re-adopted with the same pid each time.
    const base = await d.call('vm.create', { name: 'fk-base', kind: 'cli', owner: 'ops', image: 'test' });
    await d.call('vm.waitReady', { id: base.id, timeoutSeconds: 240 });
    let subject: Vm | null = null;
    const summary: string[] = [];

    for (let round = 1; round <= ROUNDS; round++) {
      const current = subject as Vm | null;
      const ops: Op[] =
        current === null ? ['create'] : current.state === 'running' ? ['stop', 'destroy'] : ['start', 'destroy'];
      const op = ops[Math.floor(random() * ops.length)]!;
      const delayMs = Math.floor(random() * (MAX_DELAY_MS + 1));
      const name: string = current?.name ?? `fk-r${round}`;
      const label = `round ${round}/${ROUNDS}: ${op} ${name} killed after ${delayMs} ms`;
      const before = new Map((await d.call('vm.list', {})).map((v) => [v.id, v]));
      const subjectId: string | null = current?.id ?? null;

      const call: Promise<unknown> =
        op === 'create'
          ? d.call('vm.create', { name, kind: 'cli', owner: 'ops', image: 'test' })
          : op === 'start'
            ? d.call('vm.start', { id: subjectId! })
            : op === 'stop'
              ? d.call('vm.stop', { id: subjectId! })
              : d.call('vm.destroy', { id: subjectId! });
      const outcome = call.then(
        () => 'answered',
        (e: unknown) => `failed (${e instanceof Error ? e.message.slice(0, 80) : String(e)})`,
      );
      await new Promise((r) => setTimeout(r, delayMs));
      await d.kill9();
      const answer = await outcome;
      await d.restart();

      const after = await assertStoreEqualsMachine(d, label);
      // Every VM that was running and not the one operated on is re-adopted with the same pid.
      for (const vm of before.values()) {
        if (vm.state !== 'running' || vm.id === subjectId) continue;
        const now = after.find((v) => v.id === vm.id);
        expect(now?.state, `${label}: ${vm.name} re-adopted`).toBe('running');
        expect(now?.pid, `${label}: ${vm.name} keeps pid ${vm.pid}`).toBe(vm.pid);
      }

      // The interrupted operation completed, or is retried now and completes.
      let found: Vm | null = after.find((v) => (subjectId !== null ? v.id === subjectId : v.name === name)) ?? null;
      const landed = found?.state ?? 'absent';
      let retried = 'no retry';
      if (op === 'create' || op === 'start') {
        if (found === null) {
          found = await d.call('vm.create', { name, kind: 'cli', owner: 'ops', image: 'test' });
          retried = 'retried create';
        } else if (found.state === 'stopped' || found.state === 'crashed') {
          // Killed before its hypervisor was recorded, a VM is crashed (the orphan QEMU killed): start retries it.
          if (op === 'create') expect(found.state, `${label}: a create leaves no stopped VM`).toBe('crashed');
          found = await d.call('vm.start', { id: found.id });
          retried = 'retried start';
        }
        found = await d.call('vm.waitReady', { id: found.id, timeoutSeconds: 120 });
        expect(found.state, `${label}: ends running`).toBe('running');
        subject = found;
      } else if (op === 'stop') {
        expect(found, `${label}: a stop keeps the VM`).not.toBeNull();
        if (found!.state === 'running') {
          expect(found!.pid, `${label}: a stop that never began keeps the pid`).toBe(current!.pid);
          found = await d.call('vm.stop', { id: found!.id });
          retried = 'retried stop';
        }
        expect(found!.state, `${label}: ends stopped`).toBe('stopped');
        subject = found;
      } else {
        if (found !== null) {
          expect(['running', 'stopped'], `${label}: a destroy not finished leaves the VM whole`).toContain(found.state);
          if (found.state === 'running') expect(found.pid).toBe(current!.pid);
          await d.call('vm.destroy', { id: found.id });
          retried = 'retried destroy';
        }
        expect((await d.call('vm.list', {})).some((v) => v.id === subjectId)).toBe(false);
        subject = null;
      }
      await assertStoreEqualsMachine(d, `${label} (after retry)`);
      const line = `${label}: call ${answer}; after restart ${landed}; ${retried}`;
      summary.push(line);
      console.log(`[fault-daemon-kill] ${line}`);
    }
    const baseNow = await d.call('vm.get', { id: base.id });
    expect(baseNow.pid).toBe(base.pid);
    expect(baseNow.state).toBe('running');
    console.log(
      `[fault-daemon-kill] seed ${SEED}: ${ROUNDS} rounds survived in ${Math.round((Date.now() - t0) / 1000)} s\n` +
        summary.join('\n'),
    );
  });
});
