import fs from 'node:fs';
import path from 'node:path';
import { subnetHolds, type Subnet } from '../net/cidr';
import type { TapIsolation } from '../net/isolation';
import type { LeaseStore } from '../net/leases';
import {
  deleteLink,
  ensureBridge,
  ensureGuestLink,
  listLinks,
  permanentNeighbours,
  removeNeighbour,
} from '../net/links';
import type { VmStore } from '../store/vmStore';
import { findProcesses, pidAlive, viewProcess, waitForPidExit } from '../system/processes';
import type { VmDriver } from './driver';
import type { EventBus } from './eventBus';
import type { VmDisks } from './vmDisks';
import { LIVE_STATES, type VmLifecycle } from './vmLifecycle';

export interface ReconcileConfig {
  stateDir: string;
  runDir: string;
  bridge: string;
  devicePrefix: string;
}

export interface ReconcileReport {
  adopted: string[];
  crashed: string[];
  /** VMs a killed daemon left `stopping`, whose stop this reconcile finished. */
  stopped: string[];
  orphansRemoved: string[];
}

export interface ReconcileDeps {
  config: ReconcileConfig;
  subnet: Subnet;
  vms: VmStore;
  leases: LeaseStore;
  drivers: VmDriver[];
  events: EventBus;
  log: (line: string) => void;
  disks: VmDisks;
  lifecycle: VmLifecycle;
  /** The TAPs' firewall: installed whole for every lease before any VM is looked at. */
  isolation?: TapIsolation;
}

/**
 * Makes the store and the machine agree after a (re)start (ARCHITECTURE.md "Restart safety"): live VMs whose
 * process is still the one we started are re-adopted (console re-attached), the others marked `crashed` with
 * their network freed, half-made creates rolled back, begun stops and destroys finished, and orphans (processes, TAPs, files) removed.
 */
export async function reconcile(deps: ReconcileDeps): Promise<ReconcileReport> {
  const { config, vms, leases, lifecycle, log } = deps;
  const report: ReconcileReport = { adopted: [], crashed: [], stopped: [], orphansRemoved: [] };
  await ensureBridge(config.bridge, deps.subnet);
  await deps.isolation?.install();
  for (const rec of vms.list()) {
    const { vm } = rec;
    if (vm.state === 'creating') {
      // The daemon died half-way through a create: nothing of it may stay.
      await lifecycle.rollbackCreate(vm.id);
      report.orphansRemoved.push(`vm:${vm.id}`);
      continue;
    }
    if (vm.state === 'destroying') {
      // A destroy had begun (its disks may be gone already): finish it rather than keep a VM without a disk.
      try {
        await lifecycle.destroy(vm.id);
        report.orphansRemoved.push(`vm:${vm.id}`);
      } catch (err) {
        log(`finish destroying ${vm.id}: ${String(err)}; it stays destroying until a destroy succeeds`);
      }
      continue;
    }
    if (!LIVE_STATES.has(vm.state)) continue;
    const driver = deps.drivers.find((d) => d.name === vm.driver);
    const alive = rec.handle !== null && driver !== undefined && (await driver.adopt(rec.handle));
    if (vm.state === 'stopping') {
      // The daemon died in the middle of a stop: the stop is finished, never taken for a crash.
      if (alive) {
        try {
          await lifecycle.finishStop(vm.id);
        } catch (err) {
          log(`finish stopping ${vm.id}: ${String(err)}`);
        }
      } else {
        if (rec.handle && pidAlive(rec.handle.pid)) {
          log(`${vm.id}: pid ${rec.handle.pid} alive but not the VM we started (cmdline or socket differ)`);
        }
        deps.disks.removeRunDir(vm.id);
        lifecycle.transition(vm.id, 'stopped', { handle: null, ready: [] });
      }
      report.stopped.push(vm.id);
      continue;
    }
    if (alive && rec.handle) {
      try {
        await lifecycle.attachConsole(vm.id, rec.handle);
        report.adopted.push(vm.id);
        continue;
      } catch (err) {
        log(`adopt ${vm.id}: console did not reconnect (${String(err)}); killing it`);
        await lifecycle.killQuietly(rec);
      }
    } else if (rec.handle && pidAlive(rec.handle.pid)) {
      log(`${vm.id}: pid ${rec.handle.pid} alive but not the VM we started (cmdline or socket differ)`);
    }
    await lifecycle.freeNetwork(vm.id).catch((e: unknown) => log(`free network ${vm.id}: ${String(e)}`));
    deps.disks.removeRunDir(vm.id);
    lifecycle.transition(vm.id, 'crashed', {
      handle: null,
      ready: [],
      lastError: 'VM process was gone when firedeckd restarted',
    });
    report.crashed.push(vm.id);
  }
  // Hypervisors a driver started for a VM in our run dir that no live VM owns (the daemon died between
  // starting one and recording it): nothing would ever stop them. Only a process whose argv, executable and
  // user are the ones a driver builds is ours; any other process naming the run dir is left alone.
  const owned = new Set(
    vms
      .list()
      .map((r) => r.handle?.pid)
      .filter((pid): pid is number => pid !== undefined),
  );
  const vmRunRoot = path.join(config.runDir, 'vms') + path.sep;
  for (const [pid] of findProcesses(`\0${vmRunRoot}`)) {
    if (owned.has(pid)) continue;
    const proc = viewProcess(pid);
    const vmId =
      proc === null ? null : deps.drivers.map((d) => d.launchedVm(proc, vmRunRoot)).find((id) => id !== null);
    if (vmId === null || vmId === undefined) {
      log(`pid ${pid} names ${vmRunRoot} but is no hypervisor a driver started: left alone`);
      continue;
    }
    try {
      process.kill(pid, 'SIGKILL');
      await waitForPidExit(pid, 5000);
      report.orphansRemoved.push(`process:${pid}`);
    } catch (err) {
      log(`orphan process ${pid}: ${String(err)}`);
    }
  }
  // TAPs with our prefix that no lease names were left by a crash between creating and recording them.
  const leasedTaps = new Set(leases.list().map((l) => l.tap));
  for (const link of await listLinks(`${config.devicePrefix}tap`)) {
    if (!/tap\d+$/.test(link) || leasedTaps.has(link)) continue;
    await deleteLink(link);
    report.orphansRemoved.push(`tap:${link}`);
  }
  // Leased TAPs (and their neighbour entries) that went missing (host reboot) come back for VMs that keep
  // their lease; a permanent neighbour entry on the bridge for an address no lease holds is an orphan.
  for (const lease of leases.list()) {
    await ensureGuestLink(lease, config.bridge).catch((e: unknown) => log(`tap ${lease.tap}: ${String(e)}`));
  }
  const leasedAddresses = new Set(leases.list().map((l) => l.address));
  for (const address of await permanentNeighbours(config.bridge)) {
    if (leasedAddresses.has(address) || !subnetHolds(deps.subnet, address)) continue;
    await removeNeighbour(address, config.bridge);
    report.orphansRemoved.push(`neighbour:${address}`);
  }
  const runVms = path.join(config.runDir, 'vms');
  const stateVms = path.join(config.stateDir, 'vms');
  const live = new Set(
    vms
      .list()
      .filter((r) => LIVE_STATES.has(r.vm.state))
      .map((r) => r.vm.id),
  );
  const known = new Set(vms.list().map((r) => r.vm.id));
  for (const entry of safeReaddir(runVms)) {
    if (live.has(entry)) continue;
    fs.rmSync(path.join(runVms, entry), { recursive: true, force: true });
    report.orphansRemoved.push(`run:${entry}`);
  }
  for (const entry of safeReaddir(stateVms)) {
    if (known.has(entry)) continue;
    fs.rmSync(path.join(stateVms, entry), { recursive: true, force: true });
    report.orphansRemoved.push(`disk:${entry}`);
  }
  deps.events.emit({ type: 'daemon.reconciled', ...report });
  log(
    `reconciled: adopted ${report.adopted.length} [${report.adopted.join(' ')}], crashed ${report.crashed.length} [${report.crashed.join(' ')}], stopped ${report.stopped.length} [${report.stopped.join(' ')}], orphans removed ${report.orphansRemoved.length} [${report.orphansRemoved.join(' ')}]`,
  );
  return report;
}

function safeReaddir(dir: string): string[] {
  try {
    return fs.readdirSync(dir);
  } catch {
    return [];
  }
}
