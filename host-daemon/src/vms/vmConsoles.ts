import { FiredeckError } from '../../../src/shared/errors';
import { ConsoleLog } from '../console/consoleLog';
import { ConsolePump } from '../console/consolePump';
import type { ConsoleMarker } from '../console/markers';
import type { VmHandle } from '../store/vmHandle';
import { pidAlive } from '../system/processes';
import type { VmDisks } from './vmDisks';

export interface VmConsolesDeps {
  disks: VmDisks;
  consoleLogMaxBytes: number;
  log: (line: string) => void;
}

/** What the lifecycle hears from a VM's console once it is attached. */
export interface ConsoleWatch {
  onMarker(marker: ConsoleMarker): void;
  /** The hypervisor went away (or may have): its console closed, or its pid died (file consoles). */
  onExit(): void;
}

/**
 * Console attach: one pump per live VM reads its serial console into the capped log and the marker scanner,
 * serves the attach socket, and feeds followers; a file console's pid is polled, since it never closes.
 */
export class VmConsoles {
  private readonly pumps = new Map<string, ConsolePump>();
  private readonly logs = new Map<string, ConsoleLog>();
  private readonly exitWatches = new Map<string, NodeJS.Timeout>();

  constructor(private readonly deps: VmConsolesDeps) {}

  log(id: string): ConsoleLog {
    let log = this.logs.get(id);
    if (!log) {
      log = new ConsoleLog(this.deps.disks.consoleLogPath(id), this.deps.consoleLogMaxBytes);
      this.logs.set(id, log);
    }
    return log;
  }

  tail(id: string, lines: number): { lines: string[]; truncated: boolean } {
    return this.log(id).tail(lines);
  }

  /** Raw console bytes as they arrive; fails when the VM has no live console. */
  follow(id: string, listener: (chunk: Buffer) => void, onEnd?: () => void): () => void {
    const pump = this.pumps.get(id);
    if (!pump) throw new FiredeckError('invalid_state', `VM ${id} has no live console`);
    return pump.follow(listener, onEnd);
  }

  /** To the guest's serial input; a no-op without a live console. */
  write(id: string, data: Buffer): void {
    this.pumps.get(id)?.write(data);
  }

  /** The last lines the live pump's scanner saw (empty without a live console). */
  scannedLines(id: string): string[] {
    return this.pumps.get(id)?.scanner.lastLines() ?? [];
  }

  /** The console's last 20 lines: the live pump's, else the log's. */
  lastLines(id: string): string[] {
    const fromPump = this.pumps.get(id)?.scanner.lastLines();
    if (fromPump && fromPump.length > 0) return fromPump.slice(-20);
    try {
      return this.log(id).tail(20).lines;
    } catch {
      return [];
    }
  }

  async attach(id: string, handle: VmHandle, watch: ConsoleWatch): Promise<void> {
    this.detach(id);
    this.deps.disks.makeRunDir(id);
    const pump = new ConsolePump(
      id,
      handle.console,
      this.log(id),
      this.deps.disks.attachSocketPath(id),
      {
        onMarker: (m) => watch.onMarker(m),
        onDisconnect: () => watch.onExit(),
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
          watch.onExit();
        }
      }, 1000);
      timer.unref();
      this.exitWatches.set(id, timer);
    }
  }

  detach(id: string): void {
    const watch = this.exitWatches.get(id);
    if (watch) clearInterval(watch);
    this.exitWatches.delete(id);
    this.pumps.get(id)?.stop();
    this.pumps.delete(id);
    this.logs.get(id)?.close();
    this.logs.delete(id);
  }

  detachAll(): void {
    for (const id of [...this.pumps.keys()]) this.detach(id);
  }
}
