import type { DaemonEvent } from '../../../src/shared/protocol/events';
import type { Vm } from '../../../src/shared/protocol/vm';
import { QmpSession } from './qemu/qmp';

/** One VM to probe: a running QEMU VM that no operation holds, and its QMP socket. */
export interface HealthTarget {
  id: string;
  qmpSocket: string;
}

export interface VmHealthDeps {
  /** The VMs to probe now. A VM that leaves this list (stopped, crashed, busy, gone) has its flag cleared. */
  targets: () => HealthTarget[];
  /** Records the VM's `unresponsiveSince` (null: fine); the VM as it is now, or null when it is gone. */
  setUnresponsive: (id: string, since: string | null) => Vm | null;
  emit: (event: DaemonEvent) => void;
  log: (line: string) => void;
  /** Between two probes of one VM (default 2000 ms). */
  intervalMs?: number;
  /** A probe that has no answer by then marks the VM unresponsive (default 3000 ms). */
  deadlineMs?: number;
}

export const HEALTH_INTERVAL_MS = 2000;
export const HEALTH_DEADLINE_MS = 3000;

/**
 * Probes every running QEMU VM's monitor (QMP `query-status`) every 2 s with a 3 s deadline. A VM whose probe
 * misses the deadline gets `unresponsiveSince` (when that probe began) and a `vm.health` event; the flag clears,
 * with another event, when a probe answers again. Probes are asynchronous and one at a time per VM, so a wedged
 * hypervisor never holds up other calls (or its own next tick). Each probe is its own QMP session, closed at
 * once: QEMU serves one monitor client at a time and the driver's stop and kill need theirs.
 */
export class VmHealthMonitor {
  private readonly intervalMs: number;
  private readonly deadlineMs: number;
  private timer: NodeJS.Timeout | null = null;
  /** Probes under way, by VM id, with what ends them early (close). */
  private readonly inFlight = new Map<string, () => void>();
  /** VMs flagged unresponsive, and since when. */
  private readonly flagged = new Map<string, string>();
  private closed = false;

  constructor(private readonly deps: VmHealthDeps) {
    this.intervalMs = deps.intervalMs ?? HEALTH_INTERVAL_MS;
    this.deadlineMs = deps.deadlineMs ?? HEALTH_DEADLINE_MS;
  }

  start(): void {
    if (this.timer || this.closed) return;
    this.timer = setInterval(() => this.tick(), this.intervalMs);
    this.tick();
  }

  /** One round: a probe for every target without one under way; flags of VMs no longer watched cleared. */
  tick(): void {
    if (this.closed) return;
    let targets: HealthTarget[];
    try {
      targets = this.deps.targets();
    } catch (err) {
      this.deps.log(`vm health: listing VMs failed: ${String(err)}`);
      return;
    }
    const watched = new Set(targets.map((t) => t.id));
    for (const id of [...this.flagged.keys()]) {
      if (!watched.has(id) && !this.inFlight.has(id)) this.mark(id, null);
    }
    for (const target of targets) {
      if (!this.inFlight.has(target.id)) void this.probe(target);
    }
  }

  /** VM ids flagged unresponsive now. */
  unresponsive(): string[] {
    return [...this.flagged.keys()];
  }

  close(): void {
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    for (const end of this.inFlight.values()) end();
    this.inFlight.clear();
  }

  private async probe(target: HealthTarget): Promise<void> {
    const began = new Date().toISOString();
    const startedAt = Date.now();
    let session: QmpSession | null = null;
    let ended = false;
    const end = (): void => {
      ended = true;
      session?.close();
    };
    this.inFlight.set(target.id, end);
    // Marked at the deadline even while the probe still waits (a stopped QEMU never answers at all).
    const deadline = setTimeout(() => {
      if (!this.closed && !this.flagged.has(target.id)) this.mark(target.id, began);
      end();
    }, this.deadlineMs);
    try {
      session = await QmpSession.open(target.qmpSocket, this.deadlineMs);
      if (ended) return;
      await session.execute('query-status', undefined, Math.max(1, this.deadlineMs - (Date.now() - startedAt)));
      if (!ended) {
        clearTimeout(deadline);
        if (this.flagged.has(target.id)) this.mark(target.id, null);
      }
    } catch {
      // A missed deadline is flagged by the timer. A socket that refuses or closes is a VM going away,
      // which the lifecycle notices (its console closes); not a wedged one.
    } finally {
      clearTimeout(deadline);
      session?.close();
      if (this.inFlight.get(target.id) === end) this.inFlight.delete(target.id);
    }
  }

  private mark(id: string, since: string | null): void {
    if (since === null) this.flagged.delete(id);
    else this.flagged.set(id, since);
    let vm: Vm | null;
    try {
      vm = this.deps.setUnresponsive(id, since);
    } catch (err) {
      this.deps.log(`vm health: recording ${id}: ${String(err)}`);
      return;
    }
    if (vm === null) {
      this.flagged.delete(id);
      return;
    }
    this.deps.log(
      since === null
        ? `${vm.name} (${id}) answers its monitor again`
        : `${vm.name} (${id}) unresponsive since ${since}`,
    );
    this.deps.emit({ type: 'vm.health', vm });
  }
}
