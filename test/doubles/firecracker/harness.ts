// What the Firecracker driver's tests share: wrapper scripts that stand where the release binaries would
// (putting the doubles' own flags in front, as the jailer passes a wrapper's arguments on), kernels with and
// without the config Ctrl-Alt-Del needs, the doubles' request logs, and the daemon's real console path (a
// ConsolePump into a capped ConsoleLog) to watch a VM's serial output.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { expect } from 'vitest';
import { FiredeckError } from '../../../src/shared/errors';
import { ConsoleLog } from '../../../host-daemon/src/console/consoleLog';
import { ConsolePump } from '../../../host-daemon/src/console/consolePump';
import type { ConsoleSource, VmDriver, VmHandle, VmLaunchSpec } from '../../../host-daemon/src/vms/driver';

const here = path.dirname(fileURLToPath(import.meta.url));
export const firecrackerDouble = path.join(here, 'firecracker.mjs');
export const jailerDouble = path.join(here, 'jailer.sh');

/** One request the Firecracker double answered (or a GUEST record of its serial output). */
export interface Call {
  seq: number;
  method: string;
  path: string;
  body: unknown;
  state: string;
  status: number;
  fault_message?: string;
}

/** A `firecracker` stand-in: `exec node firecracker.mjs <flags> "$@"` keeps the pid, so /proc shows the double. */
export function writeFirecracker(dir: string, name: string, flags: string[] = []): string {
  const file = path.join(dir, name);
  const words = flags.map((f) => `'${f}'`).join(' ');
  fs.writeFileSync(file, `#!/bin/sh\nexec '${process.execPath}' '${firecrackerDouble}' ${words} "$@"\n`, {
    mode: 0o755,
  });
  return file;
}

/** A `jailer` stand-in running jailer.sh with this node, the double's own flags first. */
export function writeJailer(dir: string, name: string, flags: string[] = []): string {
  const file = path.join(dir, name);
  const words = flags.map((f) => `'${f}'`).join(' ');
  fs.writeFileSync(
    file,
    `#!/bin/sh\nFIREDECK_DOUBLE_NODE='${process.execPath}' exec /bin/sh '${jailerDouble}' ${words} "$@"\n`,
    { mode: 0o755 },
  );
  return file;
}

export const KEYBOARD_CONFIG = 'CONFIG_SERIO=y\nCONFIG_SERIO_I8042=y\nCONFIG_KEYBOARD_ATKBD=y\n';
/** As Firecracker's CI guest configs have it: no serial I/O bus, so neither i8042 nor atkbd. */
export const NO_KEYBOARD_CONFIG = '# CONFIG_SERIO is not set\nCONFIG_VIRTIO_MMIO=y\n';

/** An uncompressed kernel (ELF magic) embedding `config` as CONFIG_IKCONFIG does, or no config at all. */
export function writeKernel(file: string, config: string | null): string {
  const parts = [Buffer.from([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1]), Buffer.alloc(8192, 0x90)];
  if (config !== null) parts.push(Buffer.from('IKCFG_ST'), gzipSync(config), Buffer.from('IKCFG_ED'));
  parts.push(Buffer.alloc(4096));
  fs.writeFileSync(file, Buffer.concat(parts), { mode: 0o644 });
  return file;
}

export function readCalls(file: string): Call[] {
  return fs
    .readFileSync(file, 'utf8')
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => JSON.parse(line) as Call);
}

/** A VM's console as the daemon reads it: a ConsolePump into a capped ConsoleLog. */
export class ConsoleWatch {
  readonly log: ConsoleLog;
  readonly markers: string[] = [];
  disconnected = false;
  private readonly pump: ConsolePump;
  private readonly waiters = new Set<() => void>();

  constructor(
    source: ConsoleSource,
    readonly dir: string,
    maxBytes = 1024 * 1024,
  ) {
    fs.mkdirSync(dir, { recursive: true });
    this.log = new ConsoleLog(path.join(dir, 'console.log'), maxBytes);
    this.pump = new ConsolePump('vm-test', source, this.log, path.join(dir, 'attach.sock'), {
      onMarker: (m) => {
        if (m.type === 'ready') this.markers.push(m.what);
        this.wake();
      },
      onDisconnect: () => {
        this.disconnected = true;
        this.wake();
      },
    });
  }

  start(): Promise<void> {
    return this.pump.start();
  }

  /** Resolves once the marker (or, for `disconnect`, the end of the stream) was seen; rejects at the deadline. */
  waitFor(what: string, timeoutMs = 15_000): Promise<void> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters.delete(check);
        reject(
          new Error(`no ${what} on the console within ${timeoutMs} ms; saw ${this.markers.join(', ') || 'no marker'}`),
        );
      }, timeoutMs);
      const check = (): void => {
        if (what === 'disconnect' ? this.disconnected : this.markers.includes(what)) {
          clearTimeout(timer);
          this.waiters.delete(check);
          resolve();
        }
      };
      this.waiters.add(check);
      check();
    });
  }

  text(): string {
    return this.log.tail(100_000).lines.join('\n');
  }

  stop(): void {
    this.pump.stop();
  }

  private wake(): void {
    for (const w of [...this.waiters]) w();
  }
}

/** The error a promise rejects with, checked to be of `type` (a FiredeckError unless told otherwise). */
export async function rejectionOf<E extends Error = FiredeckError>(
  promise: Promise<unknown>,
  type: abstract new (...args: never[]) => E = FiredeckError as unknown as abstract new (...args: never[]) => E,
): Promise<E> {
  const err = await promise.then(
    () => null,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(type);
  return err as E;
}

/** The VMs and console watches a test file started, all ended by `cleanup()` (its afterEach). */
export class TestVms {
  private readonly started: { driver: VmDriver; handle: VmHandle }[] = [];
  private readonly watches: ConsoleWatch[] = [];

  async start(driver: VmDriver, spec: VmLaunchSpec): Promise<VmHandle> {
    const handle = await driver.start(spec);
    this.started.push({ driver, handle });
    return handle;
  }

  /** A VM the test stopped itself. */
  forget(handle: VmHandle): void {
    const index = this.started.findIndex((entry) => entry.handle === handle);
    if (index >= 0) this.started.splice(index, 1);
  }

  async watch(handle: VmHandle, dir: string, maxBytes?: number): Promise<ConsoleWatch> {
    const console = new ConsoleWatch(handle.console, dir, maxBytes);
    this.watches.push(console);
    await console.start();
    return console;
  }

  async cleanup(): Promise<void> {
    for (const watch of this.watches.splice(0)) watch.stop();
    for (const { driver, handle } of this.started.splice(0)) await driver.kill(handle);
  }
}
