import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawn, type ChildProcess } from 'node:child_process';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  TestVms,
  type ConsoleWatch,
  firecrackerDouble,
  KEYBOARD_CONFIG,
  NO_KEYBOARD_CONFIG,
  readCalls,
  rejectionOf,
  writeFirecracker,
  writeJailer,
  writeKernel,
  type Call,
} from '../../../../test/doubles/firecracker/harness';
import { pidAlive, readCmdline } from '../../system/processes';
import type { VmHandle, VmLaunchSpec } from '../driver';
import { FirecrackerApi, FirecrackerApiError } from './api';
import {
  DEFAULT_SERIAL_RATE_LIMITER,
  FirecrackerDriver,
  RUN_FILES,
  waitForApiSocket,
  withFirecrackerBootArgs,
  type FirecrackerDriverOptions,
} from './driver';
import type { JailerOptions } from './jailer';

// The Firecracker binary cannot be had on test machines; its stand-in serves the API and holds every request to
// the in-repo spec (test/doubles/firecracker). Everything else is real: processes, sockets, the console FIFO, the
// daemon's console pump and capped log. These run unjailed and without root; the jailer's launches (uid drop,
// chroot, cgroups, network namespace) are in test/integration/firecracker-jailer.test.ts.

let tmp: string;
let bin: string;
let firecracker: string;
let kernel: string;
let rootfs: string;
let configDrive: string;
let vmCount = 0;
const vms = new TestVms();
const children: ChildProcess[] = [];

beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'fdt-fc-'));
  bin = path.join(tmp, 'bin');
  fs.mkdirSync(bin);
  firecracker = writeFirecracker(bin, 'firecracker');
  kernel = writeKernel(path.join(tmp, 'vmlinux'), KEYBOARD_CONFIG);
  rootfs = path.join(tmp, 'rootfs.img');
  fs.writeFileSync(rootfs, '');
  fs.truncateSync(rootfs, 64 * 1024 * 1024);
  configDrive = path.join(tmp, 'config.img');
  fs.writeFileSync(configDrive, Buffer.alloc(64 * 1024));
});

afterEach(async () => {
  await vms.cleanup();
  for (const child of children.splice(0)) {
    if (child.exitCode === null && child.signalCode === null) {
      const gone = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGKILL');
      await gone;
    }
  }
});

afterAll(() => {
  fs.rmSync(tmp, { recursive: true, force: true });
});

function direct(options: Partial<FirecrackerDriverOptions> = {}): FirecrackerDriver {
  return new FirecrackerDriver({ binary: firecracker, jailer: null, ...options });
}

function launchSpec(overrides: Partial<VmLaunchSpec> = {}): VmLaunchSpec {
  const id = `vm-${(0xfc000000 + ++vmCount).toString(16)}`;
  return {
    id,
    name: `fc-test-${vmCount}`,
    kind: 'cli',
    vcpus: 2,
    memoryMib: 256,
    kernelPath: kernel,
    initrdPath: null,
    kernelArgs: `console=ttyS0 root=/dev/vda rw panic=-1 ip=10.213.80.2::10.213.80.1:255.255.255.0:fc-test:eth0:off firedeck.vm=${id}`,
    rootfsPath: rootfs,
    rootfsFormat: 'raw',
    configDrivePath: configDrive,
    // A TAP needs root to exist; the NIC is tested jailed, with a real one, in the integration suite.
    tap: null,
    mac: null,
    runDir: path.join(tmp, id),
    ...overrides,
  };
}

function watch(handle: VmHandle, spec: VmLaunchSpec, maxBytes?: number): Promise<ConsoleWatch> {
  return vms.watch(handle, path.join(tmp, `${spec.id}-state`), maxBytes);
}

function calls(spec: VmLaunchSpec): Call[] {
  return readCalls(path.join(spec.runDir, `${RUN_FILES.apiSocket}.calls.jsonl`));
}

/** Files under `dir`, recursively, with their sizes. */
function sizes(dir: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const entry of fs.readdirSync(dir, { withFileTypes: true, recursive: true })) {
    const file = path.join(entry.parentPath, entry.name);
    if (entry.isFile()) out.set(path.relative(dir, file), fs.statSync(file).size);
  }
  return out;
}

/** Runs the double by itself (no driver) for requests the driver would never send. */
async function bareDouble(): Promise<FirecrackerApi> {
  const dir = fs.mkdtempSync(path.join(tmp, 'bare-'));
  const socket = path.join(dir, 'api.sock');
  const child = spawn(process.execPath, [firecrackerDouble, '--api-sock', socket, '--id', 'bare'], { stdio: 'ignore' });
  children.push(child);
  const exited = new Promise<string>((resolve) =>
    child.once('exit', (code, signal) => resolve(signal ?? `code ${code}`)),
  );
  const api = new FirecrackerApi(socket, { timeoutMs: 2000 });
  await waitForApiSocket(api, 10_000, exited);
  return api;
}

describe('FirecrackerDriver against the API double', () => {
  it('configures the VM through the API in order, with bodies the spec accepts, then starts it', async () => {
    const driver = direct({ vsock: true });
    const spec = launchSpec();
    const handle = await vms.start(driver, spec);

    expect(handle.controlSocket).toBe(path.join(spec.runDir, 'firecracker.sock'));
    expect(handle.console).toEqual({ kind: 'fifo', path: path.join(spec.runDir, 'serial.fifo') });
    expect(fs.statSync(handle.console.path).isFIFO()).toBe(true);
    expect(pidAlive(handle.pid)).toBe(true);
    expect(handle.cmdline).toBe(readCmdline(handle.pid));
    expect(handle.cmdline.split('\0')).toEqual(
      expect.arrayContaining(['--api-sock', handle.controlSocket, '--id', spec.id]),
    );

    const log = calls(spec);
    // Every request passed the double's spec validation and phase checks.
    expect(log.filter((call) => call.status >= 300)).toEqual([]);
    const puts = log.filter((call) => call.method === 'PUT');
    expect(puts.map((call) => call.path)).toEqual([
      '/boot-source',
      '/drives/rootfs',
      '/drives/config',
      '/machine-config',
      '/serial',
      '/vsock',
      '/actions',
    ]);
    expect(puts.every((call) => call.state === 'Not started')).toBe(true);
    const body = (p: string): unknown => puts.find((call) => call.path === p)?.body;
    expect(body('/boot-source')).toEqual({
      kernel_image_path: kernel,
      boot_args: withFirecrackerBootArgs(spec.kernelArgs),
    });
    expect(String((body('/boot-source') as { boot_args: string }).boot_args)).toMatch(
      /^console=ttyS0 root=\/dev\/vda .* reboot=k/,
    );
    expect(body('/drives/rootfs')).toEqual({
      drive_id: 'rootfs',
      path_on_host: rootfs,
      is_root_device: true,
      is_read_only: false,
    });
    expect(body('/drives/config')).toEqual({
      drive_id: 'config',
      path_on_host: configDrive,
      is_root_device: false,
      is_read_only: true,
    });
    expect(body('/machine-config')).toEqual({ vcpu_count: 2, mem_size_mib: 256 });
    // The serial console goes to a FIFO, rate-limited (the double answers as 1.17).
    expect(body('/serial')).toEqual({
      serial_out_path: handle.console.path,
      rate_limiter: DEFAULT_SERIAL_RATE_LIMITER,
    });
    expect(body('/vsock')).toEqual({ guest_cid: 3, uds_path: path.join(spec.runDir, 'vsock.sock') });
    expect(body('/actions')).toEqual({ action_type: 'InstanceStart' });

    // What the (fake) guest printed before anyone read waits in the pipe: Firecracker holds it open read-write.
    const console = await watch(handle, spec);
    await console.waitFor('vm');
    expect(console.text()).toContain('Linux version 6.1.0-firedeck-double');
    await expect(driver.inspect(handle)).resolves.toEqual({ alive: true, status: 'Running' });
  });

  it('stops gracefully with SendCtrlAltDel and awaits the exit; the console ends with the process', async () => {
    const driver = direct();
    const initrd = path.join(tmp, 'initrd.img');
    fs.writeFileSync(initrd, 'initramfs');
    const spec = launchSpec({ configDrivePath: null, initrdPath: initrd });
    const handle = await vms.start(driver, spec);
    const console = await watch(handle, spec);
    await console.waitFor('vm');

    await expect(driver.stop(handle, 10_000)).resolves.toBe('graceful');
    vms.forget(handle);
    expect(pidAlive(handle.pid)).toBe(false);
    expect(fs.existsSync(handle.controlSocket)).toBe(false);
    const last = calls(spec).at(-1)!;
    expect([last.method, last.path, last.body, last.status]).toEqual([
      'PUT',
      '/actions',
      { action_type: 'SendCtrlAltDel' },
      204,
    ]);
    expect(calls(spec).find((call) => call.path === '/boot-source')?.body).toMatchObject({ initrd_path: initrd });
    // Without a config drive or TAP the driver sends neither.
    expect(calls(spec).map((call) => call.path)).not.toContain('/drives/config');
    expect(calls(spec).map((call) => call.path)).not.toContain('/network-interfaces/eth0');
    // The guest's last words reached the log, and the FIFO's end told the pump the VM is gone.
    await console.waitFor('disconnect');
    expect(console.text()).toContain('reboot: Restarting system');
    await expect(driver.inspect(handle)).resolves.toEqual({ alive: false, status: null });
  });

  it('kills a guest that ignores Ctrl-Alt-Del once the timeout passes, and says so on its console', async () => {
    const lines: string[] = [];
    // The kernel's config is unknown (none embedded, none beside it): the driver must try and wait.
    const unknownKernel = writeKernel(path.join(tmp, 'vmlinux-unknown'), null);
    const driver = direct({
      binary: writeFirecracker(bin, 'firecracker-stubborn', ['--double-ignore-ctrl-alt-del']),
      log: (l) => lines.push(l),
    });
    const spec = launchSpec({ kernelPath: unknownKernel });
    const handle = await vms.start(driver, spec);
    const console = await watch(handle, spec);

    const before = Date.now();
    await expect(driver.stop(handle, 400)).resolves.toBe('killed');
    vms.forget(handle);
    expect(Date.now() - before).toBeGreaterThanOrEqual(390);
    expect(pidAlive(handle.pid)).toBe(false);
    expect(fs.existsSync(handle.controlSocket)).toBe(false);
    expect(
      calls(spec)
        .filter((call) => call.path === '/actions')
        .map((call) => call.body),
    ).toEqual([{ action_type: 'InstanceStart' }, { action_type: 'SendCtrlAltDel' }]);
    await console.waitFor('disconnect');
    expect(console.text()).toMatch(/\[firedeckd\] the guest did not shut down within 0 s of Ctrl-Alt-Del; killing it/);
    expect(lines.join('\n')).toMatch(/did not shut down/);
  });

  it('stops at once, without Ctrl-Alt-Del, a guest whose kernel lacks i8042/atkbd, and says why', async () => {
    const lines: string[] = [];
    const noKeyboard = writeKernel(path.join(tmp, 'vmlinux-no-keyboard'), NO_KEYBOARD_CONFIG);
    // A guest without the drivers ignores the key press, as this double does; Firecracker still answers 204.
    const driver = direct({
      binary: writeFirecracker(bin, 'firecracker-no-i8042', ['--double-ignore-ctrl-alt-del']),
      log: (l) => lines.push(l),
    });
    const spec = launchSpec({ kernelPath: noKeyboard });
    const handle = await vms.start(driver, spec);
    const console = await watch(handle, spec);
    await console.waitFor('vm');

    const before = Date.now();
    await expect(driver.stop(handle, 30_000)).resolves.toBe('killed');
    vms.forget(handle);
    // Not the 30 s the timeout allows: there was nothing to wait for.
    expect(Date.now() - before).toBeLessThan(5000);
    expect(pidAlive(handle.pid)).toBe(false);
    expect(calls(spec).map((call) => call.body)).not.toContainEqual({ action_type: 'SendCtrlAltDel' });
    await console.waitFor('disconnect');
    expect(console.text()).toMatch(
      /\[firedeckd\] graceful stop is not possible for this VM \(CONFIG_SERIO_I8042 and CONFIG_KEYBOARD_ATKBD are not set in its embedded config: Ctrl-Alt-Del cannot reach the guest\); stopping it at once, as a power cut/,
    );
    expect(lines.join('\n')).toMatch(/graceful stop is not possible/);
  });

  it('reports graceful stop of the configured kernel in its availability', async () => {
    const report = async (k: string | null): Promise<unknown> =>
      (await direct({ kernel: k }).availability()).gracefulStop;
    await expect(report(kernel)).resolves.toEqual({
      support: 'supported',
      reason: 'CONFIG_SERIO_I8042=y and CONFIG_KEYBOARD_ATKBD=y in its embedded config',
    });
    await expect(report(writeKernel(path.join(tmp, 'vmlinux-report'), NO_KEYBOARD_CONFIG))).resolves.toMatchObject({
      support: 'unsupported',
    });
    await expect(report(null)).resolves.toEqual({
      support: 'unknown',
      reason: 'no Firecracker kernel is configured (FIREDECK_FIRECRACKER_KERNEL)',
    });
  });

  it('keeps a flooding guest inside the capped console log: no file of the VM grows', async () => {
    // 8 MB from the guest, no rate limiter: the FIFO holds nothing on disk, the log rotates at its cap.
    const flooding = writeFirecracker(bin, 'firecracker-flood', ['--double-guest-output', String(8 * 1024 * 1024)]);
    const spec = launchSpec();
    const handle = await vms.start(direct({ binary: flooding, serialRateLimiter: null }), spec);
    const console = await watch(handle, spec, 256 * 1024);
    await console.waitFor('flood-done', 60_000);

    for (const [file, size] of sizes(spec.runDir)) expect(size, file).toBeLessThan(1024 * 1024);
    for (const [file, size] of sizes(console.dir)) expect(size, file).toBeLessThanOrEqual(256 * 1024);
    const guest = calls(spec).find((call) => call.method === 'GUEST')!.body as { written: number; lost: number };
    // All of it went into the FIFO, or was dropped when the pipe was full (the guest never waits); none to a file.
    expect(guest.written + guest.lost).toBeGreaterThanOrEqual(8 * 1024 * 1024);
  });

  it("sets Firecracker's serial rate limiter where the release has one", async () => {
    const flooding = writeFirecracker(bin, 'firecracker-flood-limited', [
      '--double-guest-output',
      String(8 * 1024 * 1024),
    ]);
    const spec = launchSpec();
    const handle = await vms.start(direct({ binary: flooding }), spec);
    const console = await watch(handle, spec, 4 * 1024 * 1024);
    await console.waitFor('flood-done', 60_000);
    const guest = calls(spec).find((call) => call.method === 'GUEST')!.body as {
      written: number;
      rate_limited: number;
    };
    // The 1 MiB burst and a little refill got through; the rest Firecracker dropped before the FIFO.
    expect(guest.written).toBeLessThan(2 * 1024 * 1024);
    expect(guest.rate_limited).toBeGreaterThan(6 * 1024 * 1024);
  });

  it('adopts a live VM from a fresh driver and refuses wrong pids and command lines', async () => {
    const spec = launchSpec();
    const handle = await vms.start(direct(), spec);

    // A restarted daemon: a new driver that did not spawn the process.
    const restarted = direct();
    await expect(restarted.adopt(handle)).resolves.toBe(true);
    await expect(restarted.adopt({ ...handle, pid: process.pid })).resolves.toBe(false);
    await expect(restarted.adopt({ ...handle, cmdline: `${handle.cmdline}\0--other` })).resolves.toBe(false);
    await expect(restarted.adopt({ ...handle, controlSocket: path.join(spec.runDir, 'nothing.sock') })).resolves.toBe(
      false,
    );

    // Stopping an adopted VM has no exit event to await; it must still see the process end.
    await expect(restarted.stop(handle, 10_000)).resolves.toBe('graceful');
    vms.forget(handle);
    await expect(restarted.adopt(handle)).resolves.toBe(false);
  });

  it('surfaces a Firecracker 400 as a typed error with its fault message, leaving nothing running', async () => {
    // The RPC layer bounds vCPUs; the driver passes them on, and the spec caps vcpu_count at 32.
    const spec = launchSpec({ vcpus: 33 });
    const err = await rejectionOf(direct().start(spec), FirecrackerApiError);
    expect(err.method).toBe('PUT');
    expect(err.path).toBe('/machine-config');
    expect(err.status).toBe(400);
    expect(err.faultMessage).toMatch(/vcpu_count.*maximum 32/);
    expect(err.message).toContain(err.faultMessage);
    expect(err.toJSON().data?.details).toMatchObject({ method: 'PUT', path: '/machine-config', status: 400 });

    expect(calls(spec).map((call) => call.path)).not.toContain('/actions');
    const cmdlinePid = Number(
      fs
        .readdirSync('/proc')
        .find((entry) => /^\d+$/.test(entry) && (readCmdline(Number(entry)) ?? '').includes(`--id\0${spec.id}`)) ?? 0,
    );
    expect(cmdlinePid === 0 || !pidAlive(cmdlinePid)).toBe(true);
    expect(fs.existsSync(path.join(spec.runDir, RUN_FILES.apiSocket))).toBe(false);
  });

  it('names a missing binary', async () => {
    const missing = path.join(bin, 'no-such-firecracker');
    const driver = direct({ binary: missing });
    const err = await rejectionOf(driver.start(launchSpec()));
    expect(err.kind).toBe('unavailable');
    expect(err.message).toContain(missing);
    const availability = await driver.availability();
    expect(availability.available).toBe(false);
    expect(availability.reason).toContain(missing);
  });

  it('refuses a compressed kernel before spawning anything', async () => {
    const bzImage = path.join(tmp, 'bzImage');
    fs.writeFileSync(bzImage, Buffer.concat([Buffer.alloc(0x202), Buffer.from('HdrS')]));
    const spec = launchSpec({ kernelPath: bzImage });
    const err = await rejectionOf(direct().start(spec));
    expect(err.kind).toBe('invalid_params');
    expect(err.message).toMatch(/not an uncompressed vmlinux/);
    expect(fs.existsSync(path.join(spec.runDir, RUN_FILES.apiSocket))).toBe(false);
  });

  it('refuses qcow2 disks', async () => {
    expect((await rejectionOf(direct().start(launchSpec({ rootfsFormat: 'qcow2' })))).kind).toBe('invalid_params');
  });

  it('fails with the process log when Firecracker exits before its socket answers', async () => {
    const spec = launchSpec();
    fs.mkdirSync(spec.runDir, { recursive: true });
    const failing = writeFirecracker(bin, 'firecracker-bad-flag', ['--no-such-flag']);
    const err = await rejectionOf(direct({ binary: failing }).start(spec));
    // Firecracker's arg parser error exits 153 (FcExitCode::ArgParsing).
    expect(err.message).toMatch(/exited \(code 153\) before its API socket answered/);
    expect(JSON.stringify(err.details)).toContain("Found argument 'no-such-flag' which wasn't expected");
  });
});

describe('Firecracker releases', () => {
  it('refuses releases without PUT /serial (or with its write-only FIFO) in availability and at start', async () => {
    for (const version of ['1.13.0', '1.14.1']) {
      const old = writeFirecracker(bin, `firecracker-${version}`, ['--double-version', version]);
      const driver = direct({ binary: old });
      const availability = await driver.availability();
      expect(availability).toMatchObject({ available: false, version: `Firecracker v${version}` });
      expect(availability.reason).toMatch(
        new RegExp(`Firecracker v${version} is too old: firedeckd needs Firecracker 1\\.14\\.2 or newer`),
      );
      expect(availability.reason).toMatch(/install a current Firecracker release/);

      const spec = launchSpec();
      const err = await rejectionOf(driver.start(spec));
      expect(err.kind).toBe('unavailable');
      expect(err.message).toMatch(/is too old/);
      expect(err.hint).toMatch(/install a current Firecracker release/);
      // Refused before anything ran: no API socket, no request.
      expect(fs.existsSync(path.join(spec.runDir, `${RUN_FILES.apiSocket}.calls.jsonl`))).toBe(false);
    }
  });

  it('runs 1.14.2 and 1.15 without the serial rate limiter they lack, and says so', async () => {
    for (const version of ['1.14.2', '1.15.1']) {
      const driver = direct({ binary: writeFirecracker(bin, `firecracker-${version}`, ['--double-version', version]) });
      const availability = await driver.availability();
      expect(availability.version).toBe(`Firecracker v${version}`);
      expect(availability.reason).toMatch(/has no serial rate limiter \(1\.16\.0\+\)/);
      const spec = launchSpec();
      const handle = await vms.start(driver, spec);
      expect(calls(spec).find((call) => call.path === '/serial')).toMatchObject({
        status: 204,
        body: { serial_out_path: handle.console.path },
      });
      expect(JSON.stringify(calls(spec))).not.toContain('rate_limiter');
    }
  });

  it('refuses a jailer of another release than Firecracker', async () => {
    const jailerOptions: JailerOptions = {
      binary: writeJailer(bin, 'jailer-other', ['--double-version', '1.16.1']),
      uid: 62080,
      gid: 62080,
      chrootBaseDir: path.join(tmp, 'jails'),
    };
    const driver = new FirecrackerDriver({ binary: firecracker, jailer: jailerOptions });
    const err = await rejectionOf(driver.start(launchSpec()));
    expect(err.kind).toBe('unavailable');
    expect(err.message).toMatch(/Jailer v1\.16\.1 does not match Firecracker v1\.17\.0-dev/);
    expect((await driver.availability()).reason).toMatch(/install firecracker and jailer from the same release/);
  });
});

describe('jailer settings the jailer would refuse', () => {
  const jailer = (over: Partial<JailerOptions>): JailerOptions => ({
    binary: writeJailer(bin, 'jailer'),
    uid: 62080,
    gid: 62080,
    chrootBaseDir: path.join(tmp, 'jails'),
    ...over,
  });

  it('refuses them with a typed error naming the setting, before the jailer runs', async () => {
    const cases: [Partial<JailerOptions>, RegExp][] = [
      // env.rs splits a --cgroup on every "=": a value with one is CgroupFormat to the jailer.
      [
        { cgroups: ['io.max=8:0 rbps=1048576'] },
        /cgroup setting "io.max=8:0 rbps=1048576" is refused: its value contains "="/,
      ],
      [{ cgroups: ['cpu.weight='] }, /its value is empty/],
      [{ cgroups: ['../cpu.max=1'] }, /is not a cgroup file name/],
      // env.rs CgroupInvalidParentPath: no absolute path, no "." or "..".
      [{ parentCgroup: '../escape' }, /parent cgroup "\.\.\/escape" is refused/],
      [{ parentCgroup: '/sys/fs/cgroup/elsewhere' }, /parent cgroup "\/sys\/fs\/cgroup\/elsewhere" is refused/],
      [{ parentCgroup: 'firedeck/./vms' }, /parent cgroup "firedeck\/\.\/vms" is refused/],
      [{ uid: 0 }, /would run Firecracker with uid 0 \(root\)/],
    ];
    for (const [over, message] of cases) {
      const driver = new FirecrackerDriver({ binary: firecracker, jailer: jailer(over) });
      const spec = launchSpec();
      const err = await rejectionOf(driver.start(spec));
      expect(err.kind, JSON.stringify(over)).toBe('invalid_params');
      expect(err.message).toMatch(message);
      expect(err.hint).toBeTruthy();
      // Nothing was staged, nothing ran.
      expect(fs.existsSync(path.join(tmp, 'jails', 'firecracker', spec.id))).toBe(false);
      expect(fs.existsSync(path.join(spec.runDir, RUN_FILES.processLog))).toBe(false);
      expect((await driver.availability()).available).toBe(false);
    }
  });

  it("are refused by the jailer double too, with the jailer's own words (so the check above is the jailer's)", async () => {
    const { execFile } = await import('node:child_process');
    const run = (args: string[]): Promise<{ code: number; stderr: string }> =>
      new Promise((resolve) => {
        execFile(writeJailer(bin, 'jailer-bare'), args, (err, _stdout, stderr) =>
          resolve({ code: err === null ? 0 : Number((err as { code?: number }).code), stderr }),
        );
      });
    const base = [
      '--id',
      'vm-refused',
      '--exec-file',
      firecracker,
      '--uid',
      '62080',
      '--gid',
      '62080',
      '--chroot-base-dir',
      tmp,
    ];
    await expect(run([...base, '--cgroup', 'io.max=8:0 rbps=1'])).resolves.toEqual({
      code: 1,
      stderr: 'Invalid format for cgroups: io.max=8:0 rbps=1\n',
    });
    await expect(run([...base, '--parent-cgroup', '../escape'])).resolves.toEqual({
      code: 1,
      stderr: "Parent cgroup path is invalid. Path should not be absolute or contain '..' or '.'\n",
    });
    await expect(run([...base, '--parent-cgroup', '/abs'])).resolves.toMatchObject({ code: 1 });
    await expect(run([...base.slice(0, 2), '--exec-file', path.join(tmp, 'absent')])).resolves.toMatchObject({
      code: 1,
      stderr: expect.stringMatching(/^Failed to parse arguments: Argument 'gid' required, but not found\./),
    });
    await expect(run(['--id', 'bad_id', ...base.slice(2)])).resolves.toEqual({
      code: 1,
      stderr: 'Invalid instance ID: Invalid char (_) at position 3\n',
    });
    await expect(run([...base, '--cgroup-version=2'])).resolves.toMatchObject({
      stderr:
        "Failed to parse arguments: Found argument 'cgroup-version=2' which wasn't expected, or isn't valid in this context.\n",
    });
    expect(fs.existsSync(path.join(tmp, 'firecracker', 'vm-refused'))).toBe(false);
  });
});

describe('boot arguments', () => {
  it("adds Firecracker's defaults without overriding the daemon's keys", () => {
    expect(withFirecrackerBootArgs('console=ttyS0  reboot=t root=/dev/vda')).toBe(
      'console=ttyS0 reboot=t root=/dev/vda pci=off i8042.noaux i8042.nomux i8042.nopnp i8042.dumbkbd',
    );
  });
});

describe('the API double is no rubber stamp', () => {
  it('rejects bodies the spec does not allow, with 400 and a fault message', async () => {
    const api = await bareDouble();
    const bad: [string, unknown, RegExp][] = [
      ['/machine-config', { vcpu_count: 0, mem_size_mib: 128 }, /vcpu_count: 0 is below the minimum 1/],
      ['/machine-config', { mem_size_mib: 128 }, /missing field `vcpu_count`/],
      ['/machine-config', { vcpu_count: 1, mem_size_mib: 128, huge_pages: '1G' }, /unknown variant `1G`/],
      ['/machine-config', { vcpu_count: 1.5, mem_size_mib: 128 }, /expected an integer/],
      ['/boot-source', { boot_args: 'console=ttyS0' }, /missing field `kernel_image_path`/],
      ['/drives/rootfs', { drive_id: 'rootfs', path_on_host: rootfs, is_root_device: 'yes' }, /expected a boolean/],
      [
        '/drives/rootfs',
        { drive_id: 'rootfs', path_on_host: rootfs, is_root_device: true, read_only: true },
        /unknown field `read_only`/,
      ],
      [
        '/drives/rootfs',
        { drive_id: 'other', path_on_host: rootfs, is_root_device: true },
        /does not match the id from the body/,
      ],
      [
        '/network-interfaces/eth0',
        { iface_id: 'eth0', host_dev_name: 'fdt0', mtu: 20 },
        /mtu: 20 is below the minimum 68/,
      ],
      ['/serial', { serial_path: '/tmp/x' }, /unknown field `serial_path`/],
      ['/serial', { serial_out_path: 7 }, /expected a string/],
      ['/vsock', { guest_cid: 2, uds_path: '/tmp/v.sock' }, /guest_cid: 2 is below the minimum 3/],
      ['/actions', { action_type: 'Reboot' }, /unknown variant `Reboot`/],
      ['/no-such-resource', {}, /Invalid request method and\/or path/],
    ];
    for (const [p, body, fault] of bad) {
      const err = await rejectionOf(api.request('PUT', p, body), FirecrackerApiError);
      expect(err.status, `${p} ${JSON.stringify(body)}`).toBe(400);
      expect(err.faultMessage).toMatch(fault);
    }
    // The same resources with valid bodies pass, so the rejections above are about the bodies.
    await api.request('PUT', '/machine-config', { vcpu_count: 1, mem_size_mib: 128 });
    await api.request('PUT', '/serial', { serial_out_path: path.join(tmp, 'bare-serial.log') });
  });

  it('enforces the pre-boot and post-boot order', async () => {
    const api = await bareDouble();
    expect((await rejectionOf(api.action('SendCtrlAltDel'), FirecrackerApiError)).faultMessage).toMatch(
      /not supported before starting/,
    );
    expect((await rejectionOf(api.action('InstanceStart'), FirecrackerApiError)).faultMessage).toMatch(
      /without kernel configuration/,
    );
    expect(
      (await rejectionOf(api.request('PATCH', '/vm', { state: 'Paused' }), FirecrackerApiError)).faultMessage,
    ).toMatch(/not supported before starting/);
    await api.putBootSource({ kernel_image_path: kernel, boot_args: 'console=ttyS0' });
    await api.action('InstanceStart');
    await expect(api.describeInstance()).resolves.toMatchObject({ app_name: 'Firecracker', state: 'Running' });
    for (const attempt of [
      api.putBootSource({ kernel_image_path: kernel }),
      api.putMachineConfig({ vcpu_count: 1, mem_size_mib: 128 }),
      api.putDrive({ drive_id: 'rootfs', path_on_host: rootfs, is_root_device: true, is_read_only: false }),
      api.putSerial({ serial_out_path: path.join(tmp, 'late.log') }),
      api.action('InstanceStart'),
    ]) {
      expect((await rejectionOf(attempt, FirecrackerApiError)).faultMessage).toMatch(
        /not supported after starting the microVM/,
      );
    }
  });

  it('checks what Firecracker checks beyond the schema: files, root drives, the serial file at start', async () => {
    const api = await bareDouble();
    expect(
      (await rejectionOf(api.putBootSource({ kernel_image_path: path.join(tmp, 'absent') }), FirecrackerApiError))
        .faultMessage,
    ).toMatch(/kernel file cannot be opened: No such file or directory \(os error 2\)/);
    await api.putDrive({ drive_id: 'rootfs', path_on_host: rootfs, is_root_device: true, is_read_only: false });
    expect(
      (
        await rejectionOf(
          api.putDrive({ drive_id: 'second', path_on_host: configDrive, is_root_device: true, is_read_only: true }),
          FirecrackerApiError,
        )
      ).faultMessage,
    ).toMatch(/root block device already exists/);
    // PUT /serial only records the path; the file is opened when the VM is built, at InstanceStart.
    await api.putSerial({ serial_out_path: path.join(tmp, 'no-such-dir', 'serial') });
    await api.putBootSource({ kernel_image_path: kernel, boot_args: 'console=ttyS0' });
    expect((await rejectionOf(api.action('InstanceStart'), FirecrackerApiError)).faultMessage).toMatch(
      /Start microvm error: Failed to create device manager: Error creating serial device: No such file or directory/,
    );
  });
});
