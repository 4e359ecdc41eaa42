import { execFile, spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { FiredeckError } from '../../../src/shared/errors';
import type { BootTester } from './builder';

const QEMU = '/usr/bin/qemu-system-x86_64';

/** What a direct-kernel QEMU guest under TCG is made of; drives and NICs come in `devices`. */
export interface TcgGuestSpec {
  memoryMiB: number;
  cpus: number;
  kernelPath: string;
  initrdPath: string;
  append: string;
  devices: string[];
  /** Unix sockets QEMU connects to (server=off): listen on them first, so no output is missed. */
  serialSocket: string;
  serialLog: string;
  qmpSocket: string;
}

/**
 * QEMU's argv for a short-lived guest outside the daemon's VM records (the boot test here; the test rig):
 * TCG, no default devices or display, no reboot, serial console and QMP on unix sockets.
 */
export function tcgDirectBootArgs(spec: TcgGuestSpec): string[] {
  return [
    '-M',
    'pc',
    '-accel',
    'tcg',
    // The CLIs ship native code built for x86-64-v2 and later; TCG's default qemu64 model lacks it.
    '-cpu',
    'max',
    '-nodefaults',
    '-no-user-config',
    '-display',
    'none',
    '-no-reboot',
    '-m',
    String(spec.memoryMiB),
    '-smp',
    String(spec.cpus),
    '-kernel',
    spec.kernelPath,
    '-initrd',
    spec.initrdPath,
    '-append',
    spec.append,
    ...spec.devices,
    '-chardev',
    `socket,id=s0,path=${spec.serialSocket},server=off,logfile=${spec.serialLog}`,
    '-serial',
    'chardev:s0',
    '-chardev',
    `socket,id=qmp,path=${spec.qmpSocket},server=off`,
    '-mon',
    'chardev=qmp,mode=control',
  ];
}

/**
 * The builder's boot test: boots the freshly built image in QEMU (TCG) from a qcow2 overlay (the image itself
 * is never written), with a config drive holding throw-away secrets and a restricted user-mode NIC so the guest
 * has its eth0, and waits for every readiness marker of the recipe on the serial console. The guest is then
 * powered off through the ACPI power button, which checks the graceful-stop part of the guest contract too.
 */
export const qemuBootTest: BootTester = async (image, loaded, log, signal) => {
  const { recipe } = loaded;
  if (!fs.existsSync(QEMU)) {
    throw new FiredeckError('unavailable', 'step boot-test: qemu-system-x86_64 is not installed', {
      hint: 'apt-get install qemu-system-x86 qemu-utils',
    });
  }
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'firedeck-boottest-'));
  const vmId = `vm-${crypto.randomBytes(4).toString('hex')}`;
  const markers = new Set(recipe.readiness);
  const seen: string[] = [];
  let child: ReturnType<typeof spawn> | undefined;
  const servers: net.Server[] = [];
  try {
    const overlay = path.join(dir, 'rootfs.qcow2');
    await exec('qemu-img', ['create', '-q', '-f', 'qcow2', '-b', image.rootfsPath, '-F', 'raw', overlay]);
    const cfgDir = path.join(dir, 'config');
    fs.mkdirSync(cfgDir);
    const config: Record<string, unknown> = {
      vmId,
      hostname: `boottest-${recipe.name}`,
      kind: recipe.bootTest.kind,
      authorizedKeys: [],
    };
    if (recipe.bootTest.kind === 'browser') {
      config.vncPassword = crypto.randomBytes(6).toString('base64url').slice(0, 8);
      config.agentToken = crypto.randomBytes(24).toString('hex');
    }
    // As the daemon builds it (guestConfig.ts): config.json 0600 root:root in the guest.
    fs.writeFileSync(path.join(cfgDir, 'config.json'), JSON.stringify(config), { mode: 0o600 });
    fs.chmodSync(path.join(cfgDir, 'config.json'), 0o600);
    const drive = path.join(dir, 'config.ext4');
    await exec('mkfs.ext4', ['-q', '-d', cfgDir, '-E', 'root_owner=0:0', '-L', 'FDCONFIG', drive, '4M']);

    // QEMU connects to our sockets (server=off), so no output is missed and nothing is polled.
    const serialSock = path.join(dir, 'serial.sock');
    const qmpSock = path.join(dir, 'qmp.sock');
    const listen = async (sock: string): Promise<{ connection: Promise<net.Socket> }> => {
      const server = net.createServer();
      servers.push(server);
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(sock, resolve);
      });
      return {
        connection: new Promise<net.Socket>((resolve) =>
          server.once('connection', (socket: net.Socket) => {
            // A reset when QEMU exits (e.g. mid power-down) ends the socket; unheard, it would end the daemon.
            socket.on('error', () => undefined);
            resolve(socket);
          }),
        ),
      };
    };
    const connected = (await listen(serialSock)).connection;
    const qmpConnected = (await listen(qmpSock)).connection;
    const append = [
      'console=ttyS0',
      'root=/dev/vda',
      'rw',
      'panic=-1',
      `ip=10.0.2.15::10.0.2.2:255.255.255.0:boottest-${recipe.name}:eth0:off`,
      `firedeck.vm=${vmId}`,
    ].join(' ');
    const args = tcgDirectBootArgs({
      memoryMiB: recipe.bootTest.memoryMiB,
      cpus: recipe.bootTest.cpus,
      kernelPath: image.kernelPath,
      initrdPath: image.initrdPath,
      append,
      devices: [
        '-drive',
        `file=${overlay},format=qcow2,if=virtio`,
        '-drive',
        `file=${path.join(dir, 'config.ext4')},format=raw,if=virtio,readonly=on`,
        // restrict=on: the guest gets its eth0 but can reach nothing, not even the host.
        '-netdev',
        'user,id=n0,restrict=on',
        '-device',
        'virtio-net-pci,netdev=n0',
      ],
      serialSocket: serialSock,
      serialLog: path.join(dir, 'serial.log'),
      qmpSocket: qmpSock,
    });
    log(`booting ${recipe.name} in QEMU (TCG), waiting for ${[...markers].join(', ')}`);
    const proc = spawn(QEMU, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    child = proc;
    let stderr = '';
    proc.stderr!.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));

    let tail: string[] = [];
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () =>
          fail(
            `did not reach FIREDECK-READY ${[...markers].filter((m) => !seen.includes(m)).join(', ')} within ${recipe.bootTest.timeoutSeconds} s`,
          ),
        recipe.bootTest.timeoutSeconds * 1000,
      );
      const onAbort = (): void => fail('cancelled');
      signal?.addEventListener('abort', onAbort, { once: true });
      void exited.then((code) => fail(`QEMU exited (${code}) before the markers: ${stderr.trim()}`));
      function fail(why: string): void {
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        reject(
          why === 'cancelled'
            ? new FiredeckError('cancelled', 'image build cancelled during step boot-test')
            : new FiredeckError('build_failed', `step boot-test: ${recipe.name} ${why}\n${tail.join('\n')}`, {
                details: { step: 'boot-test', command: `${QEMU} ${args.join(' ')}`, tail, seen },
              }),
        );
      }
      void connected.then((socket) => {
        let partial = '';
        socket.on('data', (d: Buffer) => {
          const lines = (partial + d.toString('utf8')).split(/\r?\n/);
          partial = lines.pop() ?? '';
          for (const line of lines) {
            tail = [...tail.slice(-29), line];
            log(line);
            const m = /^FIREDECK-READY (\S+)\s*$/.exec(line);
            if (m && (recipe.readiness as string[]).includes(m[1]!) && !seen.includes(m[1]!)) {
              seen.push(m[1]!);
              if (seen.length === markers.size) {
                clearTimeout(timer);
                signal?.removeEventListener('abort', onAbort);
                resolve();
              }
            }
          }
        });
      });
    });
    log(`markers reached: ${seen.join(', ')}; powering off`);
    await powerdown(await qmpConnected, exited, recipe.name);
    return { markers: seen };
  } finally {
    if (child && child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
      await new Promise((resolve) => child!.once('exit', resolve));
    }
    for (const server of servers) server.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
};

/**
 * The ACPI power button over QMP; the guest must power off by itself (the guest contract's graceful stop),
 * otherwise the boot test fails.
 */
async function powerdown(qmp: net.Socket, exited: Promise<number | null>, recipeName: string): Promise<void> {
  let buf = '';
  const replies: string[] = [];
  let wake: (() => void) | null = null;
  qmp.on('data', (d: Buffer) => {
    buf += d.toString();
    let i: number;
    while ((i = buf.indexOf('\n')) >= 0) {
      replies.push(buf.slice(0, i));
      buf = buf.slice(i + 1);
      wake?.();
    }
  });
  const next = async (pattern: RegExp): Promise<void> => {
    for (;;) {
      const line = replies.shift();
      if (line !== undefined) {
        if (pattern.test(line)) return;
        continue;
      }
      await new Promise<void>((resolve) => {
        wake = resolve;
      });
    }
  };
  await next(/"QMP"/);
  qmp.write('{"execute":"qmp_capabilities"}\n');
  await next(/"return"/);
  // A press can be lost while the guest is still binding its input devices: press again now and then.
  const press = (): void => {
    qmp.write('{"execute":"system_powerdown"}\n');
  };
  press();
  const again = setInterval(press, 15_000);
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<'timeout'>((resolve) => {
    timer = setTimeout(() => resolve('timeout'), 60_000);
  });
  const result = await Promise.race([exited, timeout]);
  clearTimeout(timer);
  clearInterval(again);
  if (result === 'timeout') {
    throw new FiredeckError(
      'build_failed',
      `step boot-test: ${recipeName} did not power off within 60 s of the ACPI power button`,
      {
        hint: 'the image must handle the power button (systemd-logind, or acpid in the test image)',
        details: { step: 'boot-test' },
      },
    );
  }
}

function exec(file: string, args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile(file, args, (err, _stdout, stderr) => {
      if (err) {
        reject(
          new FiredeckError(
            'build_failed',
            `step boot-test: ${file} ${args.join(' ')}: ${stderr.trim() || err.message}`,
            {
              details: { step: 'boot-test', command: `${file} ${args.join(' ')}` },
            },
          ),
        );
      } else resolve();
    });
  });
}
