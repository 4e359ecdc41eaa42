import { randomBytes } from 'node:crypto';
import { FiredeckError } from '../../../src/shared/errors';
import type { DriverName } from '../../../src/shared/protocol/daemon';
import { VM_KIND_DEFAULTS, type Vm, type VmCreateParams, type VmState } from '../../../src/shared/protocol/vm';
import { hostKeyVerdict, type ConsoleMarker } from '../console/markers';
import type { Subnet } from '../net/cidr';
import type { TapIsolation } from '../net/isolation';
import type { Lease, LeaseStore } from '../net/leases';
import { ensureGuestLink, removeGuestLink } from '../net/links';
import type { VmHandle } from '../store/vmHandle';
import type { VmRecord, VmStore } from '../store/vmStore';
import { hostMemory } from '../system/hostResources';
import { pidAlive, waitForPidExit } from '../system/processes';
import { driverPreference } from './availability';
import { kernelFor, type ImageResolver, type ResolvedImage } from './bootImage';
import type { VmDriver, VmLaunchSpec } from './driver';
import type { EventBus } from './eventBus';
import { kernelCommandLine } from './guestConfig';
import type { VmConsoles } from './vmConsoles';
import type { VmDisks } from './vmDisks';
import type { VmLocks } from './vmLocks';

export interface VmLifecycleConfig {
  bridge: string;
  browserVmTtlSeconds: number;
  /** Graceful stop budget when the caller gives none. */
  stopTimeoutSeconds: number;
  /** The driver a VM gets when it asks for none (`auto`, the default: Firecracker where usable, else QEMU). */
  driver?: 'auto' | DriverName;
}

export interface VmLifecycleDeps {
  config: VmLifecycleConfig;
  subnet: Subnet;
  vms: VmStore;
  leases: LeaseStore;
  drivers: VmDriver[];
  images: ImageResolver;
  events: EventBus;
  log: (line: string) => void;
  disks: VmDisks;
  consoles: VmConsoles;
  locks: VmLocks;
  /** A VM was created, destroyed or given a new expiry: the reaper re-arms. */
  onExpiriesChanged: () => void;
  /**
   * Runs under the VM's lock before its hypervisor starts, e.g. to finish or undo an interrupted offline
   * credential write on its disk (which must never be booted half-written).
   */
  beforeBoot?: (id: string, rootfs: { path: string; format: 'raw' | 'qcow2' }) => Promise<void>;
  /** The TAPs' firewall (net/isolation.ts): a VM's rules go in before its hypervisor starts, out with its lease. */
  isolation?: TapIsolation;
}

const MIB = 1024 * 1024;

/**
 * A VM may not ask for more guest memory than the host has available now (MemAvailable): it could never all be
 * backed, and the host would start killing processes once the guest touched it. Smaller VMs may still add up to
 * more than is free (guests rarely touch all of theirs); this refuses only the plainly impossible.
 */
async function refuseBeyondFreeMemory(memoryMib: number): Promise<void> {
  const { availableBytes } = await hostMemory();
  const availableMib = Math.floor(availableBytes / MIB);
  if (memoryMib > availableMib) {
    throw new FiredeckError(
      'resource_exhausted',
      `Not enough free memory: the VM asks for ${memoryMib} MiB, the host has ${availableMib} MiB available`,
      {
        hint: `Ask for at most ${availableMib} MiB, or stop or destroy a VM to free memory.`,
        details: { memoryMib, availableMib },
      },
    );
  }
}

/** States in which a hypervisor process runs (or should). */
export const LIVE_STATES: ReadonlySet<VmState> = new Set(['booting', 'running', 'stopping']);

/**
 * The VM lifecycle: create, start, stop, restart, destroy, readiness, and what a hypervisor's exit means. Every
 * operation holds the VM's lock; a state change is one `transition`, which emits `vm.state`.
 */
export class VmLifecycle {
  private closed = false;

  constructor(private readonly deps: VmLifecycleDeps) {}

  get(id: string): Vm {
    return this.deps.vms.require(id).vm;
  }

  async create(params: VmCreateParams): Promise<Vm> {
    const defaults = VM_KIND_DEFAULTS[params.kind];
    // Checked first so that a doomed create costs nothing; the store's unique index still decides races.
    if (this.deps.vms.byName(params.name)) {
      throw new FiredeckError('conflict', `A VM named ${params.name} already exists`, {
        hint: 'Pick another name or destroy the existing VM first.',
      });
    }
    const memoryMib = params.memoryMib ?? defaults.memoryMib;
    await refuseBeyondFreeMemory(memoryMib);
    const driver = await this.pickDriver(params.driver);
    const image = await this.deps.images.resolve(params.image);
    const id = `vm-${randomBytes(8).toString('hex')}`;
    const expiresAt =
      params.kind === 'browser'
        ? new Date(Date.now() + this.deps.config.browserVmTtlSeconds * 1000).toISOString()
        : null;
    const rec = this.deps.vms.insert({
      id,
      name: params.name,
      kind: params.kind,
      owner: params.owner,
      image: image.name !== undefined && image.version !== undefined ? `${image.name}@${image.version}` : params.image,
      driver: driver.name,
      vcpus: params.vcpus ?? defaults.vcpus,
      memoryMib,
      diskMib: params.diskMib ?? defaults.diskMib,
      sessionId: params.sessionId ?? null,
      expiresAt,
    });
    this.deps.locks.claim(id, 'create');
    try {
      this.deps.events.emit({ type: 'vm.created', vm: rec.vm });
      const lease = this.deps.leases.acquire(id);
      await ensureGuestLink(lease, this.deps.config.bridge);
      await this.deps.disks.prepare(rec, image, driver.name);
      if (params.start !== false) {
        await this.boot(id, image);
      } else {
        this.transition(id, 'stopped');
      }
    } catch (err) {
      // The caller learns why the create failed; a rollback that fails too leaves the VM `creating`, which the
      // next reconcile rolls back.
      await this.rollbackCreate(id).catch((rollbackErr: unknown) =>
        this.deps.log(`create ${id}: rollback failed, left for reconcile: ${String(rollbackErr)}`),
      );
      throw err;
    } finally {
      this.deps.locks.release(id);
      this.recheckExit(id);
      this.deps.onExpiriesChanged();
    }
    return this.get(id);
  }

  private async pickDriver(requested: DriverName | undefined): Promise<VmDriver> {
    const order = driverPreference(this.deps.config, requested);
    const reasons: string[] = [];
    for (const name of order) {
      const driver = this.deps.drivers.find((d) => d.name === name);
      if (!driver) {
        reasons.push(`${name}: not built into this firedeckd`);
        continue;
      }
      const avail = await driver.availability();
      if (avail.available) return driver;
      reasons.push(`${name}: ${avail.reason ?? 'unavailable'}`);
    }
    throw new FiredeckError('unavailable', `No usable VM driver (${reasons.join('; ')})`);
  }

  private driverFor(name: DriverName): VmDriver {
    const driver = this.deps.drivers.find((d) => d.name === name);
    if (!driver) throw new FiredeckError('unavailable', `The ${name} driver is not built into this firedeckd`);
    return driver;
  }

  /** Undoes a create that failed half-way (or that a dead daemon left `creating`): nothing of it stays. */
  async rollbackCreate(id: string): Promise<void> {
    const rec = this.deps.vms.get(id);
    if (rec?.handle) await this.killQuietly(rec);
    this.deps.consoles.detach(id);
    // The disks go first: a create that filled the disk must give the space back before the store is written.
    this.deps.disks.removeAll(id);
    const lease = this.deps.leases.get(id);
    if (lease) {
      await removeGuestLink(lease, this.deps.config.bridge).catch((e: unknown) =>
        this.deps.log(`rollback ${id}: ${String(e)}`),
      );
    }
    this.deps.leases.release(id);
    if (lease)
      await this.deps.isolation?.detach(lease).catch((e: unknown) => this.deps.log(`rollback ${id}: ${String(e)}`));
    this.deps.vms.delete(id);
    this.deps.events.emit({ type: 'vm.destroyed', vmId: id });
  }

  async start(id: string): Promise<Vm> {
    return this.withLock(id, 'start', async () => {
      const rec = this.deps.vms.require(id);
      if (rec.vm.state !== 'stopped' && rec.vm.state !== 'crashed') {
        throw new FiredeckError(
          'invalid_state',
          `VM ${rec.vm.name} is ${rec.vm.state}; only a stopped or crashed VM starts`,
        );
      }
      await this.boot(id, await this.deps.images.resolve(rec.vm.image));
      return this.get(id);
    });
  }

  async stop(id: string, opts: { timeoutSeconds?: number; force?: boolean }): Promise<Vm> {
    return this.withLock(id, 'stop', async () => {
      const rec = this.deps.vms.require(id);
      if (rec.vm.state === 'stopped' || rec.vm.state === 'crashed') return rec.vm;
      if (rec.vm.state === 'destroyed' || rec.vm.state === 'destroying' || rec.vm.state === 'creating') {
        throw new FiredeckError('invalid_state', `VM ${rec.vm.name} is ${rec.vm.state}`);
      }
      await this.halt(rec, opts);
      return this.get(id);
    });
  }

  /** Finishes a stop a killed daemon left half-done (the VM is `stopping`, its hypervisor still runs). */
  async finishStop(id: string): Promise<Vm> {
    return this.withLock(id, 'stop', async () => {
      const rec = this.deps.vms.require(id);
      if (rec.vm.state !== 'stopping') return rec.vm;
      await this.halt(rec, {});
      return this.get(id);
    });
  }

  async restart(id: string, opts: { timeoutSeconds?: number; force?: boolean }): Promise<Vm> {
    return this.withLock(id, 'restart', async () => {
      const rec = this.deps.vms.require(id);
      if (rec.vm.state === 'destroyed' || rec.vm.state === 'destroying' || rec.vm.state === 'creating') {
        throw new FiredeckError('invalid_state', `VM ${rec.vm.name} is ${rec.vm.state}`);
      }
      if (LIVE_STATES.has(rec.vm.state)) await this.halt(rec, opts);
      await this.boot(id, await this.deps.images.resolve(rec.vm.image));
      return this.get(id);
    });
  }

  /**
   * Kills the VM's hypervisor and deletes its network, disks and run dir. The VM is `destroying` before anything
   * of it goes (its handle kept, so the hypervisor can still be killed): a daemon killed half-way, or a deletion
   * that fails, leaves a VM that a later destroy or reconcile finishes, never a stopped VM without its disk.
   */
  async destroy(id: string): Promise<Vm> {
    return this.withLock(id, 'destroy', async () => {
      const rec = this.deps.vms.require(id);
      if (rec.vm.state === 'destroyed') return rec.vm;
      this.transition(id, 'destroying');
      if (rec.handle) await this.driverFor(rec.vm.driver).kill(rec.handle);
      this.deps.consoles.detach(id);
      await this.freeNetwork(id);
      this.deps.disks.removeAll(id);
      const vm = this.transition(id, 'destroyed', { handle: null, ready: [] });
      this.deps.events.emit({ type: 'vm.destroyed', vmId: id });
      this.deps.onExpiriesChanged();
      return vm;
    });
  }

  /** Moves a browser VM's expiry (e.g. to its session's end + TTL); the reaper destroys it then. */
  setExpiry(id: string, expiresAt: Date | null): Vm {
    const vm = this.deps.vms.update(id, { expiresAt: expiresAt?.toISOString() ?? null }).vm;
    this.deps.onExpiriesChanged();
    return vm;
  }

  private async boot(id: string, image: ResolvedImage): Promise<void> {
    const rec = this.deps.vms.require(id);
    const driver = this.driverFor(rec.vm.driver);
    // Checked before anything is allocated, so a refusal leaves no lease or TAP behind.
    const kernel = kernelFor(rec.vm.driver, image);
    await this.deps.beforeBoot?.(id, this.deps.disks.rootfsFile(id));
    const lease = this.deps.leases.acquire(id);
    await ensureGuestLink(lease, this.deps.config.bridge);
    await this.deps.isolation?.attach(lease);
    const rootfs = this.deps.disks.rootfsFile(id);
    const runDir = this.deps.disks.runDir(id);
    this.deps.disks.removeRunDir(id);
    this.deps.disks.makeRunDir(id);
    const spec: VmLaunchSpec = {
      id,
      name: rec.vm.name,
      kind: rec.vm.kind,
      vcpus: rec.vm.vcpus,
      memoryMib: rec.vm.memoryMib,
      ...kernel,
      kernelArgs: kernelCommandLine(id, rec.vm.name, this.guestNetwork(lease)),
      rootfsPath: rootfs.path,
      rootfsFormat: rootfs.format,
      configDrivePath: this.deps.disks.configDrivePath(id),
      tap: lease.tap,
      mac: lease.mac,
      runDir,
    };
    this.transition(id, 'booting', { ready: [], lastError: null, hostKey: null });
    let handle: VmHandle;
    try {
      handle = await driver.start(spec);
    } catch (err) {
      const e = FiredeckError.from(err);
      this.transition(id, 'crashed', { lastError: e.message, handle: null });
      throw e;
    }
    this.deps.vms.update(id, { handle, startedAt: new Date().toISOString() });
    try {
      await this.attachConsole(id, handle);
    } catch (err) {
      await driver.kill(handle).catch(() => undefined);
      this.transition(id, 'crashed', { lastError: `console: ${String(err)}`, handle: null });
      throw FiredeckError.from(err);
    }
  }

  private guestNetwork(lease: Lease): { address: string; gateway: string; netmask: string } {
    return { address: lease.address, gateway: this.deps.subnet.gateway, netmask: this.deps.subnet.netmask };
  }

  private async halt(rec: VmRecord, opts: { timeoutSeconds?: number; force?: boolean }): Promise<void> {
    const id = rec.vm.id;
    this.transition(id, 'stopping');
    const driver = this.driverFor(rec.vm.driver);
    if (rec.handle) {
      if (opts.force) await driver.kill(rec.handle);
      else {
        const how = await driver.stop(rec.handle, (opts.timeoutSeconds ?? this.deps.config.stopTimeoutSeconds) * 1000);
        if (how === 'killed') this.deps.log(`${rec.vm.name} (${id}) ignored the power button; killed`);
      }
    }
    this.deps.consoles.detach(id);
    this.deps.disks.removeRunDir(id);
    this.transition(id, 'stopped', { handle: null, ready: [] });
  }

  async killQuietly(rec: VmRecord): Promise<void> {
    if (!rec.handle) return;
    try {
      await this.driverFor(rec.vm.driver).kill(rec.handle);
    } catch (err) {
      this.deps.log(`kill ${rec.vm.id}: ${String(err)}`);
    }
  }

  /** Deletes the VM's TAP and neighbour entry and releases its address. */
  async freeNetwork(id: string): Promise<void> {
    const lease = this.deps.leases.get(id);
    if (lease) await removeGuestLink(lease, this.deps.config.bridge);
    this.deps.leases.release(id);
    if (lease) await this.deps.isolation?.detach(lease);
  }

  private async withLock<T>(id: string, op: string, fn: () => Promise<T>): Promise<T> {
    this.deps.vms.require(id);
    this.deps.locks.claim(id, op);
    try {
      return await fn();
    } finally {
      this.deps.locks.release(id);
      this.recheckExit(id);
    }
  }

  /** An exit noticed while an operation held the VM was left to it; make sure none slipped through. */
  private recheckExit(id: string): void {
    const rec = this.deps.vms.get(id);
    if (rec?.handle && LIVE_STATES.has(rec.vm.state) && !pidAlive(rec.handle.pid)) {
      this.noticeExit(id, rec.handle);
    }
  }

  transition(id: string, to: VmState, patch: Parameters<VmStore['update']>[1] = {}): Vm {
    const before = this.deps.vms.require(id).vm;
    const after = this.deps.vms.update(id, { ...patch, state: to }).vm;
    if (before.state !== to) this.deps.events.emit({ type: 'vm.state', vm: after, from: before.state, to });
    return after;
  }

  /** Attaches the VM's console, whose markers and close this lifecycle acts on (also for re-adopted VMs). */
  attachConsole(id: string, handle: VmHandle): Promise<void> {
    return this.deps.consoles.attach(id, handle, {
      onMarker: (m) => this.onMarker(id, m),
      onExit: () => this.noticeExit(id, handle),
    });
  }

  private onMarker(id: string, m: ConsoleMarker): void {
    const rec = this.deps.vms.get(id);
    if (!rec || !LIVE_STATES.has(rec.vm.state)) return;
    if (m.type === 'hostkey') {
      const verdict = hostKeyVerdict(rec.hostKey, m.key);
      if (verdict === 'pin') this.deps.vms.update(id, { hostKey: m.key });
      if (verdict === 'refused') {
        this.deps.log(
          `${rec.vm.name} (${id}): ignored a later FIREDECK-HOSTKEY with another key (${m.key.split(' ')[0]}); the boot's first key stays pinned`,
        );
      }
      return;
    }
    if (!rec.vm.ready.includes(m.what)) this.deps.vms.update(id, { ready: [...rec.vm.ready, m.what] });
    if (m.what === 'vm' && rec.vm.state === 'booting') this.transition(id, 'running');
    this.deps.events.emit({ type: 'vm.ready', vmId: id, marker: m.what });
  }

  /** Handles a hypervisor exit from a callback (nothing awaits it): a failure is logged, never thrown. */
  private noticeExit(id: string, handle: VmHandle): void {
    this.onConsoleClosed(id, handle).catch((e: unknown) => this.deps.log(`exit of ${id}: ${String(e)}`));
  }

  /** The serial stream closed: the hypervisor is gone (or going). Operations in progress handle it themselves. */
  private async onConsoleClosed(id: string, handle: VmHandle): Promise<void> {
    if (this.deps.locks.isHeld(id) || this.closed) return;
    const exited = await waitForPidExit(handle.pid, 10_000);
    const rec = this.deps.vms.get(id);
    if (!rec || this.closed || this.deps.locks.isHeld(id) || rec.handle?.pid !== handle.pid) return;
    if (!LIVE_STATES.has(rec.vm.state)) return;
    // From here the VM is this handler's, as under withLock: a restart or destroy arriving while the network is
    // freed gets `conflict` instead of booting on a lease that is about to be released.
    this.deps.locks.claim(id, 'exit');
    try {
      await this.settleExit(id, rec, handle, exited);
    } finally {
      this.deps.locks.release(id);
    }
  }

  private async settleExit(id: string, rec: VmRecord, handle: VmHandle, exited: boolean): Promise<void> {
    if (!exited) {
      this.deps.log(`${rec.vm.name} (${id}): console closed but pid ${handle.pid} lives on; reconnecting`);
      await this.attachConsole(id, handle).catch((e: unknown) => this.deps.log(`reconnect ${id}: ${String(e)}`));
      return;
    }
    const lines = this.deps.consoles.scannedLines(id);
    this.deps.consoles.detach(id);
    this.deps.disks.removeRunDir(id);
    const poweredOff = rec.vm.state === 'stopping' || lines.some((l) => /reboot: Power down/.test(l));
    if (poweredOff) {
      this.transition(id, 'stopped', { handle: null, ready: [] });
    } else {
      await this.freeNetwork(id).catch((e: unknown) => this.deps.log(`free network ${id}: ${String(e)}`));
      const last = lines.filter((l) => l.trim() !== '').slice(-1)[0] ?? '(no console output)';
      this.transition(id, 'crashed', {
        handle: null,
        ready: [],
        lastError: `hypervisor exited unexpectedly; last console line: ${last.slice(0, 300)}`,
      });
    }
  }

  /**
   * Resolves when the guest has printed `FIREDECK-READY <marker>`; fails at the deadline with the console's end,
   * or `cancelled` as soon as `signal` aborts (the caller's connection closed), its timer and listener gone.
   */
  async waitReady(id: string, marker = 'vm', timeoutSeconds = 120, signal?: AbortSignal): Promise<Vm> {
    const rec = this.deps.vms.require(id);
    if (rec.vm.ready.includes(marker)) return rec.vm;
    const cancelled = (): FiredeckError =>
      new FiredeckError(
        'cancelled',
        `Stopped waiting for FIREDECK-READY ${marker} of VM ${rec.vm.name}: the caller left`,
      );
    if (signal?.aborted) throw cancelled();
    if (rec.vm.state !== 'booting' && rec.vm.state !== 'running' && rec.vm.state !== 'creating') {
      throw new FiredeckError('invalid_state', `VM ${rec.vm.name} is ${rec.vm.state}; it will not become ready`);
    }
    return new Promise<Vm>((resolve, reject) => {
      const sub = this.deps.events.subscribe(['vm.ready', 'vm.state', 'vm.destroyed'], ({ event }) => {
        if (event.type === 'vm.ready' && event.vmId === id && event.marker === marker) {
          done();
          resolve(this.get(id));
        } else if (
          (event.type === 'vm.state' &&
            event.vm.id === id &&
            ['stopped', 'crashed', 'destroying', 'destroyed', 'stopping'].includes(event.to)) ||
          (event.type === 'vm.destroyed' && event.vmId === id)
        ) {
          done();
          reject(
            new FiredeckError('invalid_state', `VM ${rec.vm.name} stopped being live before FIREDECK-READY ${marker}`, {
              details: { lastLines: this.deps.consoles.lastLines(id) },
            }),
          );
        }
      });
      const timer = setTimeout(() => {
        done();
        const lastLines = this.deps.consoles.lastLines(id);
        reject(
          new FiredeckError(
            'timeout',
            `VM ${rec.vm.name} did not print FIREDECK-READY ${marker} within ${timeoutSeconds} s`,
            {
              hint: `Last console lines:\n${lastLines.join('\n')}`,
              details: { lastLines },
            },
          ),
        );
      }, timeoutSeconds * 1000);
      const onAbort = (): void => {
        done();
        reject(cancelled());
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      const done = (): void => {
        clearTimeout(timer);
        sub.unsubscribe();
        signal?.removeEventListener('abort', onAbort);
      };
      // The marker may have landed between the first read and the subscription.
      if (this.deps.vms.get(id)?.vm.ready.includes(marker)) {
        done();
        resolve(this.get(id));
      }
    });
  }

  /** Exits noticed from now on are left alone: VMs keep running for the next daemon to adopt. */
  close(): void {
    this.closed = true;
  }
}
