import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { FiredeckError } from '../../../src/shared/errors';
import type { DriverName } from '../../../src/shared/protocol/daemon';
import type { Vm, VmCreateParams, VmKind, VmState } from '../../../src/shared/protocol/vm';
import { ConsoleLog } from '../console/consoleLog';
import { ConsolePump } from '../console/consolePump';
import type { ConsoleMarker } from '../console/markers';
import type { Subnet } from '../net/cidr';
import type { Lease, LeaseStore } from '../net/leases';
import { deleteLink, ensureBridge, ensureTap, listLinks } from '../net/links';
import type { VmRecord, VmStore } from '../store/vmStore';
import { findProcesses, pidAlive, waitForPidExit } from '../system/processes';
import { driverPreference } from './availability';
import type { VmDriver, VmHandle, VmLaunchSpec } from './driver';
import type { EventBus } from './eventBus';
import { buildConfigDrive, ensureGuestKey, guestConfigFor, kernelCommandLine } from './guestConfig';

const run = promisify(execFile);

/** A bootable image as the catalog resolves it. */
export interface ResolvedImage {
  kernelPath: string;
  initrdPath: string | null;
  rootfsPath: string;
  /** The uncompressed kernel Firecracker boots; absent or null when the image has none. */
  firecrackerKernelPath?: string | null;
  /** When known, the VM records `name@version` so that it keeps booting the kernel its rootfs was cloned with. */
  name?: string;
  version?: string;
}

export interface ImageResolver {
  resolve(name: string): Promise<ResolvedImage>;
}

export interface VmServiceConfig {
  stateDir: string;
  runDir: string;
  bridge: string;
  devicePrefix: string;
  consoleLogMaxBytes: number;
  browserVmTtlSeconds: number;
  /** `clone`: raw copy with reflink/sparse; `overlay`: qcow2 backed by the golden image (QEMU only). */
  rootfsMode: 'clone' | 'overlay';
  /** Graceful stop budget when the caller gives none. */
  stopTimeoutSeconds: number;
  /** The driver a VM gets when it asks for none (`auto`, the default: Firecracker where usable, else QEMU). */
  driver?: 'auto' | DriverName;
}

export interface VmServiceDeps {
  config: VmServiceConfig;
  subnet: Subnet;
  vms: VmStore;
  leases: LeaseStore;
  drivers: VmDriver[];
  images: ImageResolver;
  events: EventBus;
  log: (line: string) => void;
  /** Group that may use attach sockets (the daemon's socket group). */
  attachGid: number | null;
}

export interface ReconcileReport {
  adopted: string[];
  crashed: string[];
  orphansRemoved: string[];
}

const KIND_DEFAULTS: Record<VmKind, { vcpus: number; memoryMib: number; diskMib: number }> = {
  cli: { vcpus: 1, memoryMib: 256, diskMib: 4096 },
  browser: { vcpus: 2, memoryMib: 2048, diskMib: 6144 },
};

const LIVE_STATES: ReadonlySet<VmState> = new Set(['booting', 'running', 'stopping']);

/** Browser VM secrets that go onto its config drive; kept 0600 beside the VM for the services that need them. */
export interface GuestSecrets {
  vncPassword: string;
  agentToken: string;
}

/**
 * The VM lifecycle: create, start, stop, restart, destroy, readiness, console, and reconciliation after a
 * daemon restart. One operation per VM at a time; a second conflicting call gets `conflict`.
 */
export class VmService {
  private readonly busy = new Map<string, string>();
  private readonly pumps = new Map<string, ConsolePump>();
  private readonly logs = new Map<string, ConsoleLog>();
  private readonly exitWatches = new Map<string, NodeJS.Timeout>();
  private reaperTimer: NodeJS.Timeout | null = null;
  /** One key generation for all concurrent creates. */
  private guestKey: Promise<{ privateKeyPath: string; publicKey: string }> | null = null;
  private closed = false;

  constructor(private readonly deps: VmServiceDeps) {}

  // ---- queries -------------------------------------------------------------------------------------------

  list(includeDestroyed = false): Vm[] {
    return this.deps.vms.list(includeDestroyed).map((r) => r.vm);
  }

  get(id: string): Vm {
    return this.deps.vms.require(id).vm;
  }

  record(id: string): VmRecord {
    return this.deps.vms.require(id);
  }

  vmStateDir(id: string): string {
    return path.join(this.deps.config.stateDir, 'vms', id);
  }

  vmRunDir(id: string): string {
    return path.join(this.deps.config.runDir, 'vms', id);
  }

  attachSocketPath(id: string): string {
    return path.join(this.vmRunDir(id), 'console.sock');
  }

  /**
   * `${runDir}/vms/<id>`: QEMU's sockets and the console attach socket, root-only. Members of the daemon's group
   * reach the console through the daemon (`channel.open`), never this socket: it would bypass the daemon.
   */
  private makeVmRunDir(id: string): void {
    const parent = path.join(this.deps.config.runDir, 'vms');
    fs.mkdirSync(parent, { recursive: true });
    fs.chmodSync(parent, 0o755);
    const dir = this.vmRunDir(id);
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    fs.chmodSync(dir, 0o700); // also a dir left by an older firedeckd with group access
  }

  guestKeyDir(): string {
    return path.join(this.deps.config.stateDir, 'keys');
  }

  guestSecrets(id: string): GuestSecrets | null {
    try {
      return JSON.parse(fs.readFileSync(path.join(this.vmStateDir(id), 'secrets.json'), 'utf8')) as GuestSecrets;
    } catch {
      return null;
    }
  }

  consoleTail(id: string, lines: number): { lines: string[]; truncated: boolean } {
    this.deps.vms.require(id);
    return this.consoleLog(id).tail(lines);
  }

  /** Raw console bytes as they arrive; fails when the VM has no live console. */
  followConsole(id: string, listener: (chunk: Buffer) => void, onEnd?: () => void): () => void {
    const pump = this.pumps.get(id);
    if (!pump) throw new FiredeckError('invalid_state', `VM ${id} has no live console`);
    return pump.follow(listener, onEnd);
  }

  /** To the guest's serial input (`firedeckd console --attach`); a no-op without a live console. */
  writeConsole(id: string, data: Buffer): void {
    this.pumps.get(id)?.write(data);
  }

  // ---- create --------------------------------------------------------------------------------------------

  async create(params: VmCreateParams): Promise<Vm> {
    const defaults = KIND_DEFAULTS[params.kind];
    // Checked first so that a doomed create costs nothing; the store's unique index still decides races.
    if (this.deps.vms.byName(params.name)) {
      throw new FiredeckError('conflict', `A VM named ${params.name} already exists`, {
        hint: 'Pick another name or destroy the existing VM first.',
      });
    }
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
      memoryMib: params.memoryMib ?? defaults.memoryMib,
      diskMib: params.diskMib ?? defaults.diskMib,
      sessionId: params.sessionId ?? null,
      expiresAt,
    });
    this.busy.set(id, 'create');
    try {
      this.deps.events.emit({ type: 'vm.created', vm: rec.vm });
      const lease = this.deps.leases.acquire(id);
      await ensureTap(lease.tap, this.deps.config.bridge);
      await this.prepareDisks(rec, image, driver.name);
      if (params.start !== false) {
        await this.boot(id, image);
      } else {
        this.transition(id, 'stopped');
      }
    } catch (err) {
      await this.rollbackCreate(id);
      throw err;
    } finally {
      this.busy.delete(id);
      this.recheckExit(id);
      this.armReaper();
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

  private rootfsFile(id: string): { path: string; format: 'raw' | 'qcow2' } {
    const dir = this.vmStateDir(id);
    const qcow = path.join(dir, 'rootfs.qcow2');
    if (fs.existsSync(qcow)) return { path: qcow, format: 'qcow2' };
    return { path: path.join(dir, 'rootfs.raw'), format: 'raw' };
  }

  private async prepareDisks(rec: VmRecord, image: ResolvedImage, driver: DriverName): Promise<void> {
    const { vm } = rec;
    const dir = this.vmStateDir(vm.id);
    fs.mkdirSync(dir, { recursive: true, mode: 0o750 });
    const imageBytes = fs.statSync(image.rootfsPath).size;
    const wantBytes = Math.max(imageBytes, vm.diskMib * 1024 * 1024);
    const overlay = this.deps.config.rootfsMode === 'overlay' && driver === 'qemu';
    try {
      if (overlay) {
        await run(
          'qemu-img',
          [
            'create',
            '-q',
            '-f',
            'qcow2',
            '-b',
            image.rootfsPath,
            '-F',
            'raw',
            path.join(dir, 'rootfs.qcow2'),
            String(wantBytes),
          ],
          { timeout: 60_000 },
        );
      } else {
        const target = path.join(dir, 'rootfs.raw');
        // Instant on XFS/btrfs (reflink), sparse elsewhere: never a full copy.
        await run('cp', ['--reflink=auto', '--sparse=always', image.rootfsPath, target], { timeout: 600_000 });
        if (wantBytes > imageBytes) fs.truncateSync(target, wantBytes);
      }
    } catch (err) {
      const stderr = (err as { stderr?: string }).stderr?.trim();
      throw new FiredeckError('internal', `Could not clone the rootfs for ${vm.name}: ${stderr || String(err)}`);
    }
    let authorizedKeys: string[] = [];
    let secrets: GuestSecrets | undefined;
    if (vm.kind === 'cli') {
      this.guestKey ??= ensureGuestKey(this.guestKeyDir()).catch((err: unknown) => {
        this.guestKey = null;
        throw err;
      });
      authorizedKeys = [(await this.guestKey).publicKey];
    } else {
      secrets = {
        vncPassword: randomBytes(6).toString('base64url'),
        agentToken: randomBytes(24).toString('base64url'),
      };
      fs.writeFileSync(path.join(dir, 'secrets.json'), JSON.stringify(secrets), { mode: 0o600 });
    }
    await buildConfigDrive(
      path.join(dir, 'config.img'),
      guestConfigFor({
        vmId: vm.id,
        hostname: vm.name,
        kind: vm.kind,
        sessionId: rec.sessionId,
        authorizedKeys,
        ...(secrets ? { secrets } : {}),
      }),
    );
  }

  private async rollbackCreate(id: string): Promise<void> {
    const rec = this.deps.vms.get(id);
    if (rec?.handle) await this.killQuietly(rec);
    this.stopPump(id);
    const lease = this.deps.leases.get(id);
    if (lease) await deleteLink(lease.tap).catch((e: unknown) => this.deps.log(`rollback ${id}: ${String(e)}`));
    this.deps.leases.release(id);
    fs.rmSync(this.vmStateDir(id), { recursive: true, force: true });
    fs.rmSync(this.vmRunDir(id), { recursive: true, force: true });
    this.deps.vms.delete(id);
    this.deps.events.emit({ type: 'vm.destroyed', vmId: id });
  }

  // ---- start / stop / restart / destroy ------------------------------------------------------------------

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
      if (rec.vm.state === 'destroyed' || rec.vm.state === 'creating') {
        throw new FiredeckError('invalid_state', `VM ${rec.vm.name} is ${rec.vm.state}`);
      }
      await this.halt(rec, opts);
      return this.get(id);
    });
  }

  async restart(id: string, opts: { timeoutSeconds?: number; force?: boolean }): Promise<Vm> {
    return this.withLock(id, 'restart', async () => {
      const rec = this.deps.vms.require(id);
      if (rec.vm.state === 'destroyed' || rec.vm.state === 'creating') {
        throw new FiredeckError('invalid_state', `VM ${rec.vm.name} is ${rec.vm.state}`);
      }
      if (LIVE_STATES.has(rec.vm.state)) await this.halt(rec, opts);
      await this.boot(id, await this.deps.images.resolve(rec.vm.image));
      return this.get(id);
    });
  }

  async destroy(id: string): Promise<Vm> {
    return this.withLock(id, 'destroy', async () => {
      const rec = this.deps.vms.require(id);
      if (rec.vm.state === 'destroyed') return rec.vm;
      if (rec.handle) await this.driverFor(rec.vm.driver).kill(rec.handle);
      this.stopPump(id);
      await this.freeNetwork(id);
      fs.rmSync(this.vmStateDir(id), { recursive: true, force: true });
      fs.rmSync(this.vmRunDir(id), { recursive: true, force: true });
      const vm = this.transition(id, 'destroyed', { handle: null, ready: [] });
      this.deps.events.emit({ type: 'vm.destroyed', vmId: id });
      this.armReaper();
      return vm;
    });
  }

  /** Moves a browser VM's expiry (e.g. to its session's end + TTL); the reaper destroys it then. */
  setExpiry(id: string, expiresAt: Date | null): Vm {
    const vm = this.deps.vms.update(id, { expiresAt: expiresAt?.toISOString() ?? null }).vm;
    this.armReaper();
    return vm;
  }

  private async boot(id: string, image: ResolvedImage): Promise<void> {
    const rec = this.deps.vms.require(id);
    const driver = this.driverFor(rec.vm.driver);
    // Checked before anything is allocated, so a refusal leaves no lease or TAP behind.
    const kernel = kernelFor(rec.vm.driver, image);
    const lease = this.deps.leases.acquire(id);
    await ensureTap(lease.tap, this.deps.config.bridge);
    const rootfs = this.rootfsFile(id);
    const runDir = this.vmRunDir(id);
    fs.rmSync(runDir, { recursive: true, force: true });
    this.makeVmRunDir(id);
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
      configDrivePath: path.join(this.vmStateDir(id), 'config.img'),
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
      await this.attachPump(id, handle);
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
    this.stopPump(id);
    fs.rmSync(this.vmRunDir(id), { recursive: true, force: true });
    this.transition(id, 'stopped', { handle: null, ready: [] });
  }

  private async killQuietly(rec: VmRecord): Promise<void> {
    if (!rec.handle) return;
    try {
      await this.driverFor(rec.vm.driver).kill(rec.handle);
    } catch (err) {
      this.deps.log(`kill ${rec.vm.id}: ${String(err)}`);
    }
  }

  private async freeNetwork(id: string): Promise<void> {
    const lease = this.deps.leases.get(id);
    if (lease) await deleteLink(lease.tap);
    this.deps.leases.release(id);
  }

  private async withLock<T>(id: string, op: string, fn: () => Promise<T>): Promise<T> {
    this.deps.vms.require(id);
    const current = this.busy.get(id);
    if (current !== undefined) {
      throw new FiredeckError('conflict', `VM ${id} is busy (${current} in progress)`, {
        hint: 'Wait for the running operation to finish, then retry.',
        details: { operation: current },
      });
    }
    this.busy.set(id, op);
    try {
      return await fn();
    } finally {
      this.busy.delete(id);
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

  private transition(id: string, to: VmState, patch: Parameters<VmStore['update']>[1] = {}): Vm {
    const before = this.deps.vms.require(id).vm;
    const after = this.deps.vms.update(id, { ...patch, state: to }).vm;
    if (before.state !== to) this.deps.events.emit({ type: 'vm.state', vm: after, from: before.state, to });
    return after;
  }

  // ---- console -------------------------------------------------------------------------------------------

  private consoleLog(id: string): ConsoleLog {
    let log = this.logs.get(id);
    if (!log) {
      log = new ConsoleLog(path.join(this.vmStateDir(id), 'console.log'), this.deps.config.consoleLogMaxBytes);
      this.logs.set(id, log);
    }
    return log;
  }

  private async attachPump(id: string, handle: VmHandle): Promise<void> {
    this.stopPump(id);
    this.makeVmRunDir(id);
    const pump = new ConsolePump(
      id,
      handle.console,
      this.consoleLog(id),
      this.attachSocketPath(id),
      {
        onMarker: (m) => this.onMarker(id, m),
        onDisconnect: () => this.noticeExit(id, handle),
        onError: (what, err) =>
          this.deps.log(
            `console of ${id}: ${what === 'log' ? 'cannot write the console log' : 'cannot record a marker'}: ${String(err)}`,
          ),
      },
      null, // the attach socket stays 0600 root: the daemon's group has channel.open instead
    );
    this.pumps.set(id, pump);
    try {
      await pump.start();
    } catch (err) {
      pump.stop();
      this.pumps.delete(id);
      throw err;
    }
    if (handle.console.kind === 'file') {
      // A file console never closes, and Node has no exit event for a process it did not spawn: poll the pid.
      const timer = setInterval(() => {
        if (!pidAlive(handle.pid)) {
          clearInterval(timer);
          this.exitWatches.delete(id);
          this.noticeExit(id, handle);
        }
      }, 1000);
      timer.unref();
      this.exitWatches.set(id, timer);
    }
  }

  private stopPump(id: string): void {
    const watch = this.exitWatches.get(id);
    if (watch) clearInterval(watch);
    this.exitWatches.delete(id);
    this.pumps.get(id)?.stop();
    this.pumps.delete(id);
    this.logs.get(id)?.close();
    this.logs.delete(id);
  }

  private onMarker(id: string, m: ConsoleMarker): void {
    const rec = this.deps.vms.get(id);
    if (!rec || !LIVE_STATES.has(rec.vm.state)) return;
    if (m.type === 'hostkey') {
      this.deps.vms.update(id, { hostKey: m.key });
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
    if (this.busy.has(id) || this.closed) return;
    const exited = await waitForPidExit(handle.pid, 10_000);
    const rec = this.deps.vms.get(id);
    if (!rec || this.closed || this.busy.has(id) || rec.handle?.pid !== handle.pid) return;
    if (!LIVE_STATES.has(rec.vm.state)) return;
    // From here the VM is this handler's, as under withLock: a restart or destroy arriving while the network is
    // freed gets `conflict` instead of booting on a lease that is about to be released.
    this.busy.set(id, 'exit');
    try {
      await this.settleExit(id, rec, handle, exited);
    } finally {
      this.busy.delete(id);
    }
  }

  private async settleExit(id: string, rec: VmRecord, handle: VmHandle, exited: boolean): Promise<void> {
    if (!exited) {
      this.deps.log(`${rec.vm.name} (${id}): console closed but pid ${handle.pid} lives on; reconnecting`);
      await this.attachPump(id, handle).catch((e: unknown) => this.deps.log(`reconnect ${id}: ${String(e)}`));
      return;
    }
    const lines = this.pumps.get(id)?.scanner.lastLines() ?? [];
    this.stopPump(id);
    fs.rmSync(this.vmRunDir(id), { recursive: true, force: true });
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

  /** Resolves when the guest has printed `FIREDECK-READY <marker>`; fails at the deadline with the console's end. */
  async waitReady(id: string, marker = 'vm', timeoutSeconds = 120): Promise<Vm> {
    const rec = this.deps.vms.require(id);
    if (rec.vm.ready.includes(marker)) return rec.vm;
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
            ['stopped', 'crashed', 'destroyed', 'stopping'].includes(event.to)) ||
          (event.type === 'vm.destroyed' && event.vmId === id)
        ) {
          done();
          reject(
            new FiredeckError('invalid_state', `VM ${rec.vm.name} stopped being live before FIREDECK-READY ${marker}`, {
              details: { lastLines: this.lastLines(id) },
            }),
          );
        }
      });
      const timer = setTimeout(() => {
        done();
        const lastLines = this.lastLines(id);
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
      const done = (): void => {
        clearTimeout(timer);
        sub.unsubscribe();
      };
      // The marker may have landed between the first read and the subscription.
      if (this.deps.vms.get(id)?.vm.ready.includes(marker)) {
        done();
        resolve(this.get(id));
      }
    });
  }

  private lastLines(id: string): string[] {
    const fromPump = this.pumps.get(id)?.scanner.lastLines();
    if (fromPump && fromPump.length > 0) return fromPump.slice(-20);
    try {
      return this.consoleLog(id).tail(20).lines;
    } catch {
      return [];
    }
  }

  // ---- reconcile, reaper, shutdown -----------------------------------------------------------------------

  /** Makes the store and the machine agree after a (re)start; see ARCHITECTURE.md "Restart safety". */
  async reconcile(): Promise<ReconcileReport> {
    const report: ReconcileReport = { adopted: [], crashed: [], orphansRemoved: [] };
    await ensureBridge(this.deps.config.bridge, this.deps.subnet);
    for (const rec of this.deps.vms.list()) {
      const { vm } = rec;
      if (vm.state === 'creating') {
        // The daemon died half-way through a create: nothing of it may stay.
        await this.rollbackCreate(vm.id);
        report.orphansRemoved.push(`vm:${vm.id}`);
        continue;
      }
      if (!LIVE_STATES.has(vm.state)) continue;
      const driver = this.deps.drivers.find((d) => d.name === vm.driver);
      const alive = rec.handle !== null && driver !== undefined && (await driver.adopt(rec.handle));
      if (alive && rec.handle) {
        try {
          await this.attachPump(vm.id, rec.handle);
          report.adopted.push(vm.id);
          continue;
        } catch (err) {
          this.deps.log(`adopt ${vm.id}: console did not reconnect (${String(err)}); killing it`);
          await this.killQuietly(rec);
        }
      } else if (rec.handle && pidAlive(rec.handle.pid)) {
        this.deps.log(`${vm.id}: pid ${rec.handle.pid} alive but not the VM we started (cmdline or socket differ)`);
      }
      await this.freeNetwork(vm.id).catch((e: unknown) => this.deps.log(`free network ${vm.id}: ${String(e)}`));
      fs.rmSync(this.vmRunDir(vm.id), { recursive: true, force: true });
      this.transition(vm.id, 'crashed', {
        handle: null,
        ready: [],
        lastError: 'VM process was gone when firedeckd restarted',
      });
      report.crashed.push(vm.id);
    }
    // Hypervisors started from our run dir that no live VM owns (the daemon died between starting one and
    // recording it): nothing would ever stop them.
    const owned = new Set(
      this.deps.vms
        .list()
        .map((r) => r.handle?.pid)
        .filter((pid): pid is number => pid !== undefined),
    );
    const vmRunRoot = path.join(this.deps.config.runDir, 'vms') + path.sep;
    for (const [pid] of findProcesses(`\0${vmRunRoot}`)) {
      if (owned.has(pid)) continue;
      try {
        process.kill(pid, 'SIGKILL');
        await waitForPidExit(pid, 5000);
        report.orphansRemoved.push(`process:${pid}`);
      } catch (err) {
        this.deps.log(`orphan process ${pid}: ${String(err)}`);
      }
    }
    // TAPs with our prefix that no lease names were left by a crash between creating and recording them.
    const leasedTaps = new Set(this.deps.leases.list().map((l) => l.tap));
    for (const link of await listLinks(`${this.deps.config.devicePrefix}tap`)) {
      if (!/tap\d+$/.test(link) || leasedTaps.has(link)) continue;
      await deleteLink(link);
      report.orphansRemoved.push(`tap:${link}`);
    }
    // Leased TAPs that went missing (host reboot) come back for VMs that keep their lease.
    for (const lease of this.deps.leases.list()) {
      await ensureTap(lease.tap, this.deps.config.bridge).catch((e: unknown) =>
        this.deps.log(`tap ${lease.tap}: ${String(e)}`),
      );
    }
    const runVms = path.join(this.deps.config.runDir, 'vms');
    const stateVms = path.join(this.deps.config.stateDir, 'vms');
    const live = new Set(
      this.deps.vms
        .list()
        .filter((r) => LIVE_STATES.has(r.vm.state))
        .map((r) => r.vm.id),
    );
    const known = new Set(this.deps.vms.list().map((r) => r.vm.id));
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
    this.deps.events.emit({ type: 'daemon.reconciled', ...report });
    this.deps.log(
      `reconciled: adopted ${report.adopted.length} [${report.adopted.join(' ')}], crashed ${report.crashed.length} [${report.crashed.join(' ')}], orphans removed ${report.orphansRemoved.length} [${report.orphansRemoved.join(' ')}]`,
    );
    this.armReaper();
    return report;
  }

  /** Arms one timer for the next browser VM to expire; re-armed whenever expiries change. */
  armReaper(): void {
    if (this.reaperTimer) clearTimeout(this.reaperTimer);
    this.reaperTimer = null;
    if (this.closed) return;
    const next = this.deps.vms
      .list()
      .filter((r) => r.vm.expiresAt !== null)
      .map((r) => ({ id: r.vm.id, at: Date.parse(r.vm.expiresAt!) }))
      .sort((a, b) => a.at - b.at)[0];
    if (!next) return;
    const delay = Math.min(Math.max(next.at - Date.now(), 0), 2 ** 31 - 1);
    this.reaperTimer = setTimeout(() => this.runReaper(), delay);
    this.reaperTimer.unref();
  }

  private runReaper(): void {
    this.reap().catch((e: unknown) => this.deps.log(`reaper: ${String(e)}`));
  }

  private async reap(): Promise<void> {
    const now = Date.now();
    for (const rec of this.deps.vms.list()) {
      if (rec.vm.expiresAt === null || Date.parse(rec.vm.expiresAt) > now || this.busy.has(rec.vm.id)) continue;
      this.deps.log(
        `reaper: ${rec.vm.kind} VM ${rec.vm.name} (${rec.vm.id}) expired at ${rec.vm.expiresAt}; destroying`,
      );
      await this.destroy(rec.vm.id).catch((e: unknown) => this.deps.log(`reaper: ${rec.vm.id}: ${String(e)}`));
    }
    // Busy ones are retried shortly.
    if (!this.closed) {
      if (this.reaperTimer) clearTimeout(this.reaperTimer);
      const pending = this.deps.vms.list().some((r) => r.vm.expiresAt !== null && Date.parse(r.vm.expiresAt) <= now);
      if (pending) {
        this.reaperTimer = setTimeout(() => this.runReaper(), 5000);
        this.reaperTimer.unref();
      } else this.armReaper();
    }
  }

  /** Stops watching consoles; VMs keep running (they are re-adopted by the next daemon). */
  shutdown(): void {
    this.closed = true;
    if (this.reaperTimer) clearTimeout(this.reaperTimer);
    for (const id of [...this.pumps.keys()]) this.stopPump(id);
  }
}

function safeReaddir(dir: string): string[] {
  try {
    return fs.readdirSync(dir);
  } catch {
    return [];
  }
}

/** QEMU boots the image's own Debian kernel and initrd; Firecracker needs the uncompressed kernel built with it. */
export function kernelFor(driver: DriverName, image: ResolvedImage): { kernelPath: string; initrdPath: string | null } {
  if (driver === 'qemu') return { kernelPath: image.kernelPath, initrdPath: image.initrdPath };
  if (image.firecrackerKernelPath === undefined || image.firecrackerKernelPath === null) {
    const ref = image.name === undefined ? 'the image' : `image ${image.name}@${image.version ?? 'current'}`;
    throw new FiredeckError('invalid_state', `${ref} has no Firecracker kernel`, {
      hint: 'set FIREDECK_FIRECRACKER_KERNEL to an uncompressed vmlinux and rebuild the image, or use driver qemu',
    });
  }
  return { kernelPath: image.firecrackerKernelPath, initrdPath: null };
}
