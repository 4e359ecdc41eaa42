import fs from 'node:fs';
import net from 'node:net';
import type { ConsoleSource } from '../vms/driver';
import type { ConsoleLog } from './consoleLog';
import { MarkerScanner, type ConsoleMarker } from './markers';

export interface ConsolePumpEvents {
  onMarker(marker: ConsoleMarker): void;
  /** The hypervisor closed the serial stream (usually: the VM process ended). */
  onDisconnect(): void;
  /**
   * Keeping the log or handling a marker failed (a full disk, a busy store). Reported once per kind of
   * failure until it works again; the console keeps flowing to followers and attached clients.
   */
  onError?(what: 'log' | 'marker', err: unknown): void;
}

/**
 * Reads one VM's serial console for as long as the VM lives: into the capped log, through the marker scanner,
 * out to followers. Also serves `attachSocket`, where `firedeckd console` follows or attaches (raw bytes both
 * ways: what a client writes goes to the guest's serial port).
 */
export class ConsolePump {
  readonly scanner = new MarkerScanner();
  private readonly followers = new Set<(chunk: Buffer) => void>();
  private readonly followerEnds = new Map<(chunk: Buffer) => void, () => void>();
  private serial: net.Socket | null = null;
  private fileWatcher: fs.FSWatcher | null = null;
  private attachServer: net.Server | null = null;
  private readonly attachClients = new Set<net.Socket>();
  private stopped = false;
  private readonly failing = new Set<'log' | 'marker'>();

  constructor(
    readonly vmId: string,
    private readonly source: ConsoleSource,
    private readonly log: ConsoleLog,
    private readonly attachSocket: string,
    private readonly events: ConsolePumpEvents,
    private readonly attachGid: number | null = null,
  ) {}

  async start(): Promise<void> {
    await this.serveAttach();
    if (this.source.kind === 'unix-socket') await this.connectSerial(this.source.path);
    else if (this.source.kind === 'fifo') this.readFifo(this.source.path);
    else this.followFile(this.source.path);
  }

  /** Subscribes to raw console bytes (`onEnd` when the pump stops); returns the unsubscribe function. */
  follow(listener: (chunk: Buffer) => void, onEnd?: () => void): () => void {
    this.followers.add(listener);
    if (onEnd) this.followerEnds.set(listener, onEnd);
    return () => {
      this.followers.delete(listener);
      this.followerEnds.delete(listener);
    };
  }

  /** Writes to the guest's serial input (attach); a FIFO console has none (Firecracker takes no serial input then). */
  write(data: Buffer | string): void {
    if (this.source.kind === 'unix-socket') this.serial?.write(data);
  }

  stop(): void {
    this.stopped = true;
    this.serial?.destroy();
    this.serial = null;
    this.fileWatcher?.close();
    this.fileWatcher = null;
    for (const c of this.attachClients) c.destroy();
    const ends = [...this.followerEnds.values()];
    this.followers.clear();
    this.followerEnds.clear();
    for (const end of ends) end();
    this.attachServer?.close();
    this.attachServer = null;
    fs.rmSync(this.attachSocket, { force: true });
    this.log.close();
  }

  private ingest(chunk: Buffer): void {
    // Runs in socket and watcher callbacks: a throw here would end the daemon, and with it every VM's console.
    this.guard('log', () => this.log.append(chunk));
    for (const m of this.scanner.push(chunk)) this.guard('marker', () => this.events.onMarker(m));
    for (const f of this.followers) f(chunk);
    for (const c of this.attachClients) {
      // A client that stops reading loses output rather than making the daemon buffer without bound.
      if (c.writableLength < 4 * 1024 * 1024) c.write(chunk);
    }
  }

  private guard(what: 'log' | 'marker', fn: () => void): void {
    try {
      fn();
      this.failing.delete(what);
    } catch (err) {
      if (!this.failing.has(what)) this.events.onError?.(what, err);
      this.failing.add(what);
    }
  }

  private connectSerial(socketPath: string): Promise<void> {
    return new Promise((resolve, reject) => {
      const socket = net.connect(socketPath);
      socket.once('connect', () => {
        this.serial = socket;
        resolve();
      });
      // Before the connect this fails start(); after it, 'close' follows and reports the disconnect.
      socket.on('error', (err) => reject(err));
      socket.on('data', (chunk: Buffer) => this.ingest(chunk));
      socket.on('close', () => {
        if (this.serial === socket) this.serial = null;
        if (!this.stopped) this.events.onDisconnect();
      });
    });
  }

  /**
   * Reads a FIFO the hypervisor holds open for writing. Opened without O_NONBLOCK a FIFO would block until a
   * writer came; with it, the open succeeds at once and the stream ends (EOF) only when the last writer closes
   * it, i.e. when the hypervisor exits. What the guest wrote while nobody read waits in the pipe (64 KiB).
   */
  private readFifo(fifo: string): void {
    const fd = fs.openSync(fifo, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
    if (!fs.fstatSync(fd).isFIFO()) {
      fs.closeSync(fd);
      throw new Error(`${fifo} is not a FIFO`);
    }
    const stream = new net.Socket({ fd, readable: true, writable: false });
    this.serial = stream;
    stream.on('data', (chunk: Buffer) => this.ingest(chunk));
    stream.on('error', () => undefined);
    stream.on('close', () => {
      if (this.serial === stream) this.serial = null;
      if (!this.stopped) this.events.onDisconnect();
    });
  }

  private followFile(file: string): void {
    let offset = 0;
    try {
      offset = fs.statSync(file).size;
    } catch {
      // the hypervisor creates it
    }
    const readNew = (): void => {
      let fd: number;
      try {
        fd = fs.openSync(file, 'r');
      } catch {
        return;
      }
      try {
        const size = fs.fstatSync(fd).size;
        if (size < offset) offset = 0;
        while (offset < size) {
          const buf = Buffer.alloc(Math.min(65536, size - offset));
          const n = fs.readSync(fd, buf, 0, buf.length, offset);
          if (n <= 0) break;
          offset += n;
          this.ingest(buf.subarray(0, n));
        }
      } finally {
        fs.closeSync(fd);
      }
    };
    this.fileWatcher = fs.watch(file, () => readNew());
    readNew();
  }

  private async serveAttach(): Promise<void> {
    fs.rmSync(this.attachSocket, { force: true });
    const server = net.createServer((client) => {
      this.attachClients.add(client);
      client.on('data', (data: Buffer) => this.write(data));
      client.on('error', () => undefined);
      client.on('close', () => this.attachClients.delete(client));
    });
    this.attachServer = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.attachSocket, () => resolve());
    });
    if (this.attachGid !== null) fs.chownSync(this.attachSocket, 0, this.attachGid);
    fs.chmodSync(this.attachSocket, this.attachGid !== null ? 0o660 : 0o600);
  }
}
