import { execFile, spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { FiredeckError } from '../../../src/shared/errors';
import { BOOT_TEST_UIDS, QEMU_SANDBOX, freeUid, uidsInUse } from '../system/uidPool';
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

/** The descriptor numbers (in QEMU) of the built image's files that a confined boot test hands over open. */
export const BOOT_TEST_FDS = { rootfs: 3, kernel: 4, initrd: 5 } as const;

/** The files of one boot test in its own temp dir, which the boot test's uid owns. */
export function bootTestPaths(dir: string): {
  overlay: string;
  configDrive: string;
  serialSocket: string;
  serialLog: string;
  qmpSocket: string;
} {
  return {
    overlay: path.join(dir, 'rootfs.qcow2'),
    configDrive: path.join(dir, 'config.ext4'),
    serialSocket: path.join(dir, 'serial.sock'),
    serialLog: path.join(dir, 'serial.log'),
    qmpSocket: path.join(dir, 'qmp.sock'),
  };
}

/**
 * QEMU's argv for a boot test under `-sandbox` as an unprivileged uid: it opens by path only what lies in its
 * temp dir (the qcow2 overlay, the config drive, its log and the daemon's sockets, all its uid's); the built
 * image, root's, comes open: the rootfs as the overlay's backing from an fd set (`/dev/fdset/1`, read-only), the
 * kernel and initrd as `/proc/self/fd/N` (BOOT_TEST_FDS; a copy in the temp dir where the file is not readable
 * by others, as opening that link checks its mode).
 */
export function confinedBootTestArgs(spec: { dir: string; memoryMiB: number; cpus: number; append: string }): string[] {
  const p = bootTestPaths(spec.dir);
  return [
    ...tcgDirectBootArgs({
      memoryMiB: spec.memoryMiB,
      cpus: spec.cpus,
      kernelPath: `/proc/self/fd/${BOOT_TEST_FDS.kernel}`,
      initrdPath: `/proc/self/fd/${BOOT_TEST_FDS.initrd}`,
      append: spec.append,
      devices: [
        '-add-fd',
        `fd=${BOOT_TEST_FDS.rootfs},set=1,opaque=rootfs-ro`,
        '-drive',
        `file=${escapeOpt(p.overlay)},format=qcow2,if=virtio,backing.file.filename=/dev/fdset/1,backing.driver=raw`,
        '-drive',
        `file=${escapeOpt(p.configDrive)},format=raw,if=virtio,readonly=on`,
        // restrict=on: the guest gets its eth0 but can reach nothing, not even the host.
        '-netdev',
        'user,id=n0,restrict=on',
        '-device',
        'virtio-net-pci,netdev=n0',
      ],
      serialSocket: escapeOpt(p.serialSocket),
      serialLog: escapeOpt(p.serialLog),
      qmpSocket: escapeOpt(p.qmpSocket),
    }),
    '-sandbox',
    QEMU_SANDBOX,
  ];
}

/** Uids handed to boot tests still running in this process (a QEMU not yet started shows in no /proc entry). */
const bootTestUidsTaken = new Set<number>();

/**
 * The builder's boot test: boots the freshly built image in QEMU (TCG) from a qcow2 overlay (the image itself
 * is never written), with a config drive holding throw-away secrets and a restricted user-mode NIC so the guest
 * has its eth0, and waits for every readiness marker of the recipe on the serial console. The guest is then
 * powered off through the ACPI power button, which checks the graceful-stop part of the guest contract too.
 * QEMU runs confined as a VM's does: under `-sandbox` (every class denied), as a uid of BOOT_TEST_UIDS that no
 * process runs as, without groups, owning only the boot test's temp dir; the built image stays root's and is
 * handed over open (confinedBootTestArgs). The temp dir is removed afterwards.
 */
export const qemuBootTest: BootTester = async (image, loaded, log, signal) => {
  const { recipe } = loaded;
  if (!fs.existsSync(QEMU)) {
    throw new FiredeckError('unavailable', 'step boot-test: qemu-system-x86_64 is not installed', {
      hint: 'apt-get install qemu-system-x86 qemu-utils',
    });
  }
  const vmId = `vm-${crypto.randomBytes(4).toString('hex')}`;
  const inUse = uidsInUse();
  for (const u of bootTestUidsTaken) inUse.add(u);
  const uid = freeUid(BOOT_TEST_UIDS, vmId, inUse);
  bootTestUidsTaken.add(uid);
  const markers = new Set(recipe.readiness);
  const seen: string[] = [];
  let child: ReturnType<typeof spawn> | undefined;
  const servers: net.Server[] = [];
  const opened: number[] = [];
  let dir: string | undefined;
  try {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'firedeck-boottest-'));
    reachableByAnyone(path.dirname(dir));
    const p = bootTestPaths(dir);
    await exec('qemu-img', ['create', '-q', '-f', 'qcow2', '-b', image.rootfsPath, '-F', 'raw', p.overlay]);
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
    await exec('mkfs.ext4', ['-q', '-d', cfgDir, '-E', 'root_owner=0:0', '-L', 'FDCONFIG', p.configDrive, '4M']);
    fs.rmSync(cfgDir, { recursive: true, force: true });

    // QEMU connects to our sockets (server=off), so no output is missed and nothing is polled.
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
    const connected = (await listen(p.serialSocket)).connection;
    const qmpConnected = (await listen(p.qmpSocket)).connection;

    // The temp dir and everything in it become the uid's (connecting to a socket takes write access to it);
    // the built image stays root's and goes over open, in BOOT_TEST_FDS order.
    for (const f of [p.overlay, p.configDrive, p.serialSocket, p.qmpSocket]) {
      fs.chownSync(f, uid, uid);
      fs.chmodSync(f, 0o600);
    }
    fs.chownSync(dir, uid, uid);
    fs.chmodSync(dir, 0o700);
    opened.push(fs.openSync(image.rootfsPath, fs.constants.O_RDONLY));
    opened.push(openBootFile(image.kernelPath, dir, uid));
    opened.push(openBootFile(image.initrdPath, dir, uid));

    const append = [
      'console=ttyS0',
      'root=/dev/vda',
      'rw',
      'panic=-1',
      `ip=10.0.2.15::10.0.2.2:255.255.255.0:boottest-${recipe.name}:eth0:off`,
      `firedeck.vm=${vmId}`,
    ].join(' ');
    const args = confinedBootTestArgs({
      dir,
      memoryMiB: recipe.bootTest.memoryMiB,
      cpus: recipe.bootTest.cpus,
      append,
    });
    log(`booting ${recipe.name} in QEMU (TCG) as uid ${uid} under -sandbox, waiting for ${[...markers].join(', ')}`);
    // Node drops the supplementary groups (setgroups) before setgid and setuid when a uid is given.
    const proc = spawn(QEMU, args, { uid, gid: uid, stdio: ['ignore', 'ignore', 'pipe', ...opened] });
    child = proc;
    let stderr = '';
    proc.stderr!.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
    await new Promise<void>((resolve, reject) => {
      proc.once('spawn', resolve);
      proc.once('error', (err) =>
        reject(
          new FiredeckError('build_failed', `step boot-test: could not start QEMU as uid ${uid}: ${err.message}`, {
            hint: 'the boot test starts QEMU as an unprivileged uid of its own, which only root can do',
            details: { step: 'boot-test' },
          }),
        ),
      );
    });
    // QEMU holds its own copies of the descriptors now.
    for (const fd of opened.splice(0)) fs.closeSync(fd);

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
    for (const fd of opened) fs.closeSync(fd);
    for (const server of servers) server.close();
    if (dir !== undefined) fs.rmSync(dir, { recursive: true, force: true });
    bootTestUidsTaken.delete(uid);
  }
};

/**
 * A kernel or initrd of the built image, open, for QEMU to read as /proc/self/fd/N: opening that link checks the
 * file's own mode, so a file others may not read (Debian makes initrds 0600) goes over as a copy in the boot
 * test's temp dir that its uid owns.
 */
function openBootFile(file: string, dir: string, uid: number): number {
  if ((fs.statSync(file).mode & 0o004) !== 0) return fs.openSync(file, fs.constants.O_RDONLY);
  const copy = path.join(dir, `boot-${path.basename(file)}`);
  fs.copyFileSync(file, copy);
  fs.chownSync(copy, uid, uid);
  fs.chmodSync(copy, 0o400);
  return fs.openSync(copy, fs.constants.O_RDONLY);
}

/** Throws unless every directory from `/` to `dir` may be searched by any uid (QEMU's uid must reach its temp dir). */
function reachableByAnyone(dir: string): void {
  for (let d = path.resolve(dir); ; d = path.dirname(d)) {
    if ((fs.statSync(d).mode & 0o001) === 0) {
      throw new FiredeckError(
        'invalid_state',
        `step boot-test: a sandboxed QEMU cannot reach its temp dir: ${d} is closed to others`,
        {
          hint: `chmod o+x ${d}, or point TMPDIR at a directory every user may search (such as /tmp)`,
          details: { step: 'boot-test' },
        },
      );
    }
    if (d === path.dirname(d)) return;
  }
}

/** QEMU option values escape a comma by doubling it. */
function escapeOpt(value: string): string {
  return value.replace(/,/g, ',,');
}

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
