import { FiredeckError } from '../../../src/shared/errors';
import type { Vm, VmCreateParams } from '../../../src/shared/protocol/vm';
import type { VmRecord } from '../store/vmStore';
import type { BrowserProxy } from './guestConfig';
import { reconcile, type ReconcileConfig, type ReconcileReport } from './reconcile';
import { VmReaper } from './reaper';
import { VmConsoles } from './vmConsoles';
import { VmDisks, type GuestSecrets, type VmDisksConfig } from './vmDisks';
import { VmLifecycle, type VmLifecycleConfig, type VmLifecycleDeps } from './vmLifecycle';
import { VmLocks } from './vmLocks';
import type { HealthTarget } from './vmHealth';

export type { ReconcileReport } from './reconcile';
export type { GuestSecrets } from './vmDisks';

export interface VmServiceConfig extends VmDisksConfig, VmLifecycleConfig, ReconcileConfig {
  consoleLogMaxBytes: number;
}

/** What VmService needs from outside: the lifecycle's dependencies but the parts it builds itself. */
export interface VmServiceDeps
  extends Omit<VmLifecycleDeps, 'config' | 'disks' | 'consoles' | 'locks' | 'onExpiriesChanged'> {
  config: VmServiceConfig;
  /** The proxy for browser VMs (the vault's, unsealed), read as each one's config drive is made. */
  browserProxy?: () => BrowserProxy | null;
}

/**
 * What the daemon's handlers and channels call for VMs, assembled from its parts: the lifecycle (locks and
 * transitions), disks, console attach, reconcile after a restart, and the reaper. One operation per VM at a
 * time; a second conflicting call gets `conflict`.
 */
export class VmService {
  private readonly disks: VmDisks;
  private readonly consoles: VmConsoles;
  private readonly locks = new VmLocks();
  private readonly lifecycle: VmLifecycle;
  private readonly reaper: VmReaper;

  constructor(private readonly deps: VmServiceDeps) {
    this.disks = new VmDisks(deps.config, deps.browserProxy);
    this.consoles = new VmConsoles({
      disks: this.disks,
      consoleLogMaxBytes: deps.config.consoleLogMaxBytes,
      log: deps.log,
    });
    this.lifecycle = new VmLifecycle({
      ...deps,
      disks: this.disks,
      consoles: this.consoles,
      locks: this.locks,
      onExpiriesChanged: () => this.reaper.arm(),
    });
    this.reaper = new VmReaper({
      vms: deps.vms,
      isBusy: (id) => this.locks.isHeld(id),
      destroy: (id) => this.lifecycle.destroy(id),
      log: deps.log,
    });
  }

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
    return this.disks.stateDir(id);
  }

  vmRunDir(id: string): string {
    return this.disks.runDir(id);
  }

  attachSocketPath(id: string): string {
    return this.disks.attachSocketPath(id);
  }

  guestKeyDir(): string {
    return this.disks.guestKeyDir();
  }

  guestSecrets(id: string): GuestSecrets | null {
    return this.disks.guestSecrets(id);
  }

  consoleTail(id: string, lines: number): { lines: string[]; truncated: boolean } {
    this.deps.vms.require(id);
    return this.consoles.tail(id, lines);
  }

  /** Raw console bytes as they arrive; fails when the VM has no live console. */
  followConsole(id: string, listener: (chunk: Buffer) => void, onEnd?: () => void): () => void {
    return this.consoles.follow(id, listener, onEnd);
  }

  /** To the guest's serial input (`firedeckd console --attach`); a no-op without a live console. */
  writeConsole(id: string, data: Buffer): void {
    this.consoles.write(id, data);
  }

  create(params: VmCreateParams): Promise<Vm> {
    return this.lifecycle.create(params);
  }

  start(id: string): Promise<Vm> {
    return this.lifecycle.start(id);
  }

  stop(id: string, opts: { timeoutSeconds?: number; force?: boolean }): Promise<Vm> {
    return this.lifecycle.stop(id, opts);
  }

  restart(id: string, opts: { timeoutSeconds?: number; force?: boolean }): Promise<Vm> {
    return this.lifecycle.restart(id, opts);
  }

  destroy(id: string): Promise<Vm> {
    return this.lifecycle.destroy(id);
  }

  /** Moves a browser VM's expiry (e.g. to its session's end + TTL); the reaper destroys it then. */
  setExpiry(id: string, expiresAt: Date | null): Vm {
    return this.lifecycle.setExpiry(id, expiresAt);
  }

  /**
   * Runs `fn` on a stopped VM's root disk while holding the VM's lock, so that nothing starts the VM meanwhile
   * (an offline credential write). `stillStopped` is asked again right before the disk is written.
   */
  async withStoppedDisk<T>(
    id: string,
    operation: string,
    fn: (disk: { path: string; format: 'raw' | 'qcow2' }, stillStopped: () => boolean) => Promise<T>,
  ): Promise<T> {
    this.locks.claim(id, operation);
    try {
      const stopped = (): boolean => {
        const rec = this.deps.vms.require(id);
        return rec.vm.state === 'stopped' && rec.vm.pid === null;
      };
      if (!stopped()) {
        throw new FiredeckError('invalid_state', `VM ${this.get(id).name} is ${this.get(id).state}, not stopped`, {
          hint: "A running VM's disk is never written; the credential goes in over its sshd instead.",
        });
      }
      return await fn(this.disks.rootfsFile(id), stopped);
    } finally {
      this.locks.release(id);
    }
  }

  /** What the health monitor probes: every running or booting QEMU VM with a handle that no operation holds. */
  healthTargets(): HealthTarget[] {
    return this.deps.vms
      .list()
      .filter((r) => (r.vm.state === 'running' || r.vm.state === 'booting') && r.vm.driver === 'qemu')
      .filter((r) => r.handle !== null && !this.locks.isHeld(r.vm.id))
      .map((r) => ({ id: r.vm.id, qmpSocket: r.handle!.controlSocket }));
  }

  /** Records the health monitor's verdict; the VM as it is now, or null when it is gone. */
  setUnresponsive(id: string, since: string | null): Vm | null {
    if (this.deps.vms.get(id) === null) return null;
    return this.deps.vms.setUnresponsive(id, since).vm;
  }

  /** Resolves when the guest has printed `FIREDECK-READY <marker>`; fails at the deadline with the console's end. */
  waitReady(id: string, marker = 'vm', timeoutSeconds = 120, signal?: AbortSignal): Promise<Vm> {
    return this.lifecycle.waitReady(id, marker, timeoutSeconds, signal);
  }

  /** Makes the store and the machine agree after a (re)start; see ARCHITECTURE.md "Restart safety". */
  async reconcile(): Promise<ReconcileReport> {
    const report = await reconcile({ ...this.deps, disks: this.disks, lifecycle: this.lifecycle });
    this.reaper.arm();
    return report;
  }

  /** Arms one timer for the next browser VM to expire; re-armed whenever expiries change. */
  armReaper(): void {
    this.reaper.arm();
  }

  /** Stops watching consoles; VMs keep running (they are re-adopted by the next daemon). */
  shutdown(): void {
    this.lifecycle.close();
    this.reaper.close();
    this.consoles.detachAll();
  }
}
