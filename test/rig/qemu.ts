import { execFile, spawn, type ChildProcess } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { tcgDirectBootArgs } from '../../host-daemon/src/images/bootTest';
import { childExited, stopChild } from '../../host-daemon/src/system/processes';
import { makeTempDir, requireTool } from './tmp';

/** Kernel, initrd and rootfs of an image (a TestImage or a catalog's ResolvedImage). */
export interface BootableImage {
  kernelPath: string;
  initrdPath: string;
  rootfsPath: string;
}

export interface QemuGuestOptions {
  image: BootableImage;
  memoryMiB?: number;
  cpus?: number;
  /**
   * A private bridge with the host at 10.213.N.1/24 and a TAP for the guest at 10.213.N.2: `true` picks N from
   * 100–249 and names the devices `fdt…`; a suite with a range of its own passes it.
   */
  network?: boolean | GuestNetworkRange;
  /** Contents of `/config.json` on the FDCONFIG config drive (/dev/vdb); no drive when omitted. */
  config?: Record<string, unknown>;
  vmId?: string;
  hostname?: string;
  extraKernelArgs?: string[];
  /** Serial bytes kept in memory for waitForConsole (the log file keeps everything). Default 4 MiB. */
  consoleBufferBytes?: number;
}

/** Where a suite's guest networks may live: third octets of 10.213.N.0/24 and a device name prefix (≤ 5 chars). */
export interface GuestNetworkRange {
  thirdOctets: number[];
  devicePrefix: string;
}

export interface GuestNetwork {
  bridge: string;
  tap: string;
  hostIp: string;
  guestIp: string;
  netmask: string;
}

export interface QemuGuest {
  dir: string;
  pid: number;
  vmId: string;
  serialLogPath: string;
  network: GuestNetwork | null;
  /** The console output kept in memory (the tail when it exceeded the buffer). */
  consoleText(): string;
  /** Resolves with the first match in the console output (including what was printed already). */
  waitForConsole(pattern: RegExp, timeoutMs: number): Promise<RegExpExecArray>;
  /** Types into the serial console (a root shell in the test image). */
  writeConsole(text: string): void;
  qmp(command: string, args?: Record<string, unknown>): Promise<unknown>;
  /** ACPI power button (QMP system_powerdown); resolves when QEMU has exited. */
  powerdown(timeoutMs: number): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Powers the guest off (killing it after a grace period), removes its TAP, bridge and files. */
  stop(): Promise<void>;
}

const QEMU = '/usr/bin/qemu-system-x86_64';

/**
 * Boots a QEMU (TCG) guest from an image for the test suites. The rootfs is a qcow2 overlay of the image (never
 * written), the serial console and QMP are unix sockets that QEMU connects to (so no output is missed and
 * nothing is polled), the serial stream is also logged to a file. Distinct from the daemon's QEMU driver.
 */
export async function startQemuGuest(options: QemuGuestOptions): Promise<QemuGuest> {
  requireTool(QEMU, 'qemu-system-x86');
  requireTool('/usr/bin/qemu-img', 'qemu-utils');
  if (options.config !== undefined) requireTool('/usr/sbin/mkfs.ext4', 'e2fsprogs');
  for (const p of [options.image.kernelPath, options.image.initrdPath, options.image.rootfsPath]) {
    if (!fs.existsSync(p)) throw new Error(`qemu rig: ${p} does not exist`);
  }
  const vmId = options.vmId ?? `vm-${crypto.randomBytes(4).toString('hex')}`;
  const hostname = options.hostname ?? vmId;
  const dir = makeTempDir('qemu');
  const cleanups: (() => Promise<void> | void)[] = [() => fs.rmSync(dir, { recursive: true, force: true })];
  const runCleanups = async (): Promise<void> => {
    for (const c of cleanups.splice(0).reverse()) {
      try {
        await c();
      } catch (err) {
        process.stderr.write(`qemu rig cleanup: ${err instanceof Error ? err.message : String(err)}\n`);
      }
    }
  };

  try {
    const overlay = path.join(dir, 'rootfs.qcow2');
    await exec('/usr/bin/qemu-img', [
      'create',
      '-q',
      '-f',
      'qcow2',
      '-b',
      options.image.rootfsPath,
      '-F',
      'raw',
      overlay,
    ]);

    const drives = ['-drive', `file=${overlay},format=qcow2,if=virtio`];
    if (options.config !== undefined) {
      const cfgDir = path.join(dir, 'config');
      fs.mkdirSync(cfgDir);
      // As the daemon builds it (guestConfig.ts): config.json 0600 root:root in the guest.
      fs.writeFileSync(path.join(cfgDir, 'config.json'), JSON.stringify(options.config), { mode: 0o600 });
      fs.chmodSync(path.join(cfgDir, 'config.json'), 0o600);
      const cfgImg = path.join(dir, 'config.ext4');
      await exec('/usr/sbin/mkfs.ext4', ['-q', '-d', cfgDir, '-E', 'root_owner=0:0', '-L', 'FDCONFIG', cfgImg, '4M']);
      drives.push('-drive', `file=${cfgImg},format=raw,if=virtio,readonly=on`);
    }

    const append = ['console=ttyS0', 'root=/dev/vda', 'rw', 'panic=-1'];
    const netArgs: string[] = [];
    let network: GuestNetwork | null = null;
    if (options.network) {
      network = await createNetwork(
        options.network === true ? { thirdOctets: between(100, 250), devicePrefix: 'fdt' } : options.network,
      );
      const created = network;
      cleanups.push(() => removeNetwork(created));
      append.push(`ip=${network.guestIp}::${network.hostIp}:${network.netmask}:${hostname}:eth0:off`);
      const mac = `52:54:00:${crypto
        .randomBytes(3)
        .toString('hex')
        .replace(/(..)(?!$)/g, '$1:')}`;
      netArgs.push(
        '-netdev',
        `tap,id=n0,ifname=${network.tap},script=no,downscript=no`,
        '-device',
        `virtio-net-pci,netdev=n0,mac=${mac}`,
      );
    }
    append.push(`firedeck.vm=${vmId}`, ...(options.extraKernelArgs ?? []));

    const serialSock = path.join(dir, 'serial.sock');
    const qmpSock = path.join(dir, 'qmp.sock');
    const serialLogPath = path.join(dir, 'serial.log');
    const serialServer = await listenUnix(serialSock);
    const qmpServer = await listenUnix(qmpSock);
    cleanups.push(() => {
      serialServer.close();
      qmpServer.close();
    });
    const serialConn = once<net.Socket>(serialServer, 'connection');
    const qmpConn = once<net.Socket>(qmpServer, 'connection');

    const args = tcgDirectBootArgs({
      memoryMiB: options.memoryMiB ?? 384,
      cpus: options.cpus ?? 1,
      kernelPath: options.image.kernelPath,
      initrdPath: options.image.initrdPath,
      append: append.join(' '),
      devices: [...drives, ...netArgs],
      serialSocket: serialSock,
      serialLog: serialLogPath,
      qmpSocket: qmpSock,
    });
    const child: ChildProcess = spawn(QEMU, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    const exited = childExited(child);
    cleanups.push(async () => {
      await stopChild(child, 'SIGKILL');
    });
    const early = exited.then(({ code }) => {
      throw new Error(`qemu exited (${code}) before connecting its sockets: ${stderr.trim()}`);
    });
    const [serial, qmpSocket] = await Promise.race([Promise.all([serialConn, qmpConn]), early]);

    const consoleLimit = options.consoleBufferBytes ?? 4 * 1024 * 1024;
    let consoleBuf = '';
    const waiters = new Set<() => void>();
    serial.on('data', (d: Buffer) => {
      consoleBuf += d.toString('utf8');
      if (consoleBuf.length > consoleLimit) consoleBuf = consoleBuf.slice(-Math.floor(consoleLimit / 2));
      for (const w of [...waiters]) w();
    });
    serial.on('error', () => undefined);

    const qmp = await QmpClient.connect(qmpSocket);
    const pid = child.pid!;

    const waitForConsole = (pattern: RegExp, timeoutMs: number): Promise<RegExpExecArray> =>
      new Promise((resolve, reject) => {
        const check = (): void => {
          const re = new RegExp(pattern.source, pattern.flags.replace('g', ''));
          const m = re.exec(consoleBuf);
          if (m) {
            finish();
            resolve(m);
          }
        };
        const timer = setTimeout(() => {
          finish();
          reject(
            new Error(
              `guest ${vmId}: no ${pattern} on the serial console within ${timeoutMs} ms; last output:\n${consoleBuf.slice(-3000)}`,
            ),
          );
        }, timeoutMs);
        const onExit = (): void => {
          finish();
          reject(
            new Error(
              `guest ${vmId}: QEMU exited before ${pattern}; last output:\n${consoleBuf.slice(-3000)}\n${stderr}`,
            ),
          );
        };
        child.once('exit', onExit);
        function finish(): void {
          clearTimeout(timer);
          waiters.delete(check);
          child.off('exit', onExit);
        }
        waiters.add(check);
        check();
      });

    const powerdown = async (timeoutMs: number): Promise<{ code: number | null; signal: NodeJS.Signals | null }> => {
      if (child.exitCode !== null || child.signalCode !== null) return exited;
      await qmp.execute('system_powerdown');
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new Error(`guest ${vmId}: still running ${timeoutMs} ms after system_powerdown`)),
          timeoutMs,
        );
      });
      try {
        return await Promise.race([exited, timeout]);
      } finally {
        clearTimeout(timer);
      }
    };

    return {
      dir,
      pid,
      vmId,
      serialLogPath,
      network,
      consoleText: () => consoleBuf,
      waitForConsole,
      writeConsole: (text) => {
        serial.write(text);
      },
      qmp: (command, cmdArgs) => qmp.execute(command, cmdArgs),
      powerdown,
      exited,
      stop: async () => {
        if (child.exitCode === null && child.signalCode === null) {
          try {
            await powerdown(15_000);
          } catch {
            // Killed by the cleanup below.
          }
        }
        qmp.close();
        serial.destroy();
        await runCleanups();
      },
    };
  } catch (err) {
    await runCleanups();
    throw err;
  }
}

function exec(file: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(file, args, (err, stdout, stderr) => {
      if (err) reject(new Error(`${file} ${args.join(' ')}: ${stderr.trim() || err.message}`));
      else resolve(stdout);
    });
  });
}

function listenUnix(sock: string): Promise<net.Server> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(sock, () => resolve(server));
  });
}

function once<T>(emitter: net.Server, event: string): Promise<T> {
  return new Promise((resolve) => emitter.once(event, (v: T) => resolve(v)));
}

function between(from: number, to: number): number[] {
  return Array.from({ length: to - from }, (_, i) => from + i);
}

/** A bridge and TAP named `<prefix><hex>b` / `<prefix><hex>t` on a free 10.213.N.0/24 of the range. */
async function createNetwork(range: GuestNetworkRange): Promise<GuestNetwork> {
  requireTool('/usr/sbin/ip', 'iproute2');
  const used = await exec('/usr/sbin/ip', ['-4', '-o', 'addr', 'show']);
  const free = range.thirdOctets.filter((n) => !used.includes(`10.213.${n}.`));
  if (free.length === 0) throw new Error('qemu rig: no free 10.213.N.0/24 subnet for a test bridge');
  const n = free[crypto.randomInt(free.length)]!;
  const id = crypto.randomBytes(3).toString('hex');
  const network: GuestNetwork = {
    bridge: `${range.devicePrefix}${id}b`,
    tap: `${range.devicePrefix}${id}t`,
    hostIp: `10.213.${n}.1`,
    guestIp: `10.213.${n}.2`,
    netmask: '255.255.255.0',
  };
  try {
    await exec('/usr/sbin/ip', ['link', 'add', network.bridge, 'type', 'bridge']);
    await exec('/usr/sbin/ip', ['addr', 'add', `${network.hostIp}/24`, 'dev', network.bridge]);
    await exec('/usr/sbin/ip', ['link', 'set', network.bridge, 'up']);
    await exec('/usr/sbin/ip', ['tuntap', 'add', network.tap, 'mode', 'tap']);
    await exec('/usr/sbin/ip', ['link', 'set', network.tap, 'master', network.bridge, 'up']);
  } catch (err) {
    await removeNetwork(network);
    throw err;
  }
  return network;
}

async function removeNetwork(network: GuestNetwork): Promise<void> {
  for (const dev of [network.tap, network.bridge]) {
    try {
      await exec('/usr/sbin/ip', ['link', 'del', dev]);
    } catch {
      // Not created (or already gone with QEMU).
    }
  }
}

/** Minimal QMP client: capabilities negotiation, then one command at a time. */
class QmpClient {
  private buf = '';
  private pending: { resolve: (v: unknown) => void; reject: (e: Error) => void }[] = [];
  private greeted: Promise<void>;

  private constructor(private readonly socket: net.Socket) {
    let onGreeting: () => void = () => undefined;
    this.greeted = new Promise((resolve) => {
      onGreeting = resolve;
    });
    socket.on('data', (d: Buffer) => {
      this.buf += d.toString();
      let i: number;
      while ((i = this.buf.indexOf('\n')) >= 0) {
        const line = this.buf.slice(0, i).trim();
        this.buf = this.buf.slice(i + 1);
        if (!line) continue;
        const msg = JSON.parse(line) as { QMP?: unknown; return?: unknown; error?: { desc: string }; event?: string };
        if (msg.QMP !== undefined) onGreeting();
        else if (msg.event !== undefined) continue;
        else if (msg.error !== undefined) this.pending.shift()?.reject(new Error(`QMP: ${msg.error.desc}`));
        else if ('return' in msg) this.pending.shift()?.resolve(msg.return);
      }
    });
    socket.on('close', () => {
      for (const p of this.pending.splice(0)) p.reject(new Error('QMP connection closed'));
    });
    socket.on('error', () => undefined);
  }

  static async connect(socket: net.Socket): Promise<QmpClient> {
    const client = new QmpClient(socket);
    await client.greeted;
    await client.execute('qmp_capabilities');
    return client;
  }

  execute(command: string, args?: Record<string, unknown>): Promise<unknown> {
    return new Promise((resolve, reject) => {
      this.pending.push({ resolve, reject });
      this.socket.write(`${JSON.stringify(args ? { execute: command, arguments: args } : { execute: command })}\n`);
    });
  }

  close(): void {
    this.socket.destroy();
  }
}

/**
 * OpenSSH client arguments for a throw-away rig guest, up to the destination: its host key is new at every
 * boot, so it is neither checked nor kept, and nothing prompts.
 */
export function guestSshArgs(keyPath: string, ...extraOptions: string[]): string[] {
  const options = ['StrictHostKeyChecking=no', 'UserKnownHostsFile=/dev/null', 'BatchMode=yes', ...extraOptions];
  return ['-i', keyPath, ...options.flatMap((o) => ['-o', o]), '-o', 'LogLevel=ERROR'];
}
