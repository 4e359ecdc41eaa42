import type { VmStore } from '../store/vmStore';

export interface VmReaperDeps {
  vms: VmStore;
  /** Whether an operation holds the VM now; a busy VM is retried shortly. */
  isBusy: (id: string) => boolean;
  destroy: (id: string) => Promise<unknown>;
  log: (line: string) => void;
}

/** Destroys VMs whose expiry has passed (browser VMs: their TTL, or their session's end + TTL). */
export class VmReaper {
  private timer: NodeJS.Timeout | null = null;
  private closed = false;

  constructor(private readonly deps: VmReaperDeps) {}

  /** Arms one timer for the next VM to expire; re-armed whenever expiries change. */
  arm(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    if (this.closed) return;
    const next = this.deps.vms
      .list()
      .filter((r) => r.vm.expiresAt !== null)
      .map((r) => ({ id: r.vm.id, at: Date.parse(r.vm.expiresAt!) }))
      .sort((a, b) => a.at - b.at)[0];
    if (!next) return;
    const delay = Math.min(Math.max(next.at - Date.now(), 0), 2 ** 31 - 1);
    this.timer = setTimeout(() => this.run(), delay);
    this.timer.unref();
  }

  private run(): void {
    this.reap().catch((e: unknown) => this.deps.log(`reaper: ${String(e)}`));
  }

  private async reap(): Promise<void> {
    const now = Date.now();
    for (const rec of this.deps.vms.list()) {
      if (rec.vm.expiresAt === null || Date.parse(rec.vm.expiresAt) > now || this.deps.isBusy(rec.vm.id)) continue;
      this.deps.log(
        `reaper: ${rec.vm.kind} VM ${rec.vm.name} (${rec.vm.id}) expired at ${rec.vm.expiresAt}; destroying`,
      );
      await this.deps.destroy(rec.vm.id).catch((e: unknown) => this.deps.log(`reaper: ${rec.vm.id}: ${String(e)}`));
    }
    // Busy ones are retried shortly.
    if (!this.closed) {
      if (this.timer) clearTimeout(this.timer);
      const pending = this.deps.vms.list().some((r) => r.vm.expiresAt !== null && Date.parse(r.vm.expiresAt) <= now);
      if (pending) {
        this.timer = setTimeout(() => this.run(), 5000);
        this.timer.unref();
      } else this.arm();
    }
  }

  close(): void {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
  }
}
