import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { FiredeckError } from '../../../../src/shared/errors';
import type { VmHandle, VmLaunchSpec } from '../driver';
import { FirecrackerApi, FirecrackerApiError } from './api';
import { FirecrackerDriver, RUN_FILES, waitForApiSocket, withFirecrackerBootArgs } from './driver';
import { pidAlive, readCmdline } from '../../system/processes';

// The Firecracker binary cannot be had on test machines; its stand-in serves the API and holds every
// request to the in-repo spec (test/doubles/firecracker). Everything else here is real: processes,
// sockets, files.
const double = fileURLToPath(new URL('../../../../test/doubles/firecracker/firecracker.mjs', import.meta.url));

interface Call {
  seq: number;
  method: string;
  path: string;
  body: unknown;
  state: string;
  status: number;
  fault_message?: string;
}

let tmp: string;
let firecracker: string;
let stubborn: string;
let kernel: string;
let rootfs: string;
let configDrive: string;
let vmCount = 0;
const started: { driver: FirecrackerDriver; handle: VmHandle }[] = [];
const children: ChildProcess[] = [];

beforeAll(() => {
  expect(fs.existsSync(double), `test double missing at ${double}`).toBe(true);
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'fdt-fc-'));
  fs.mkdirSync(path.join(tmp, 'bin'));
  // Wrappers stand where a release binary would; `exec` keeps the pid, so /proc shows the double's cmdline.
  const wrapper = (name: string, extra: string): string => {
    const file = path.join(tmp, 'bin', name);
    fs.writeFileSync(file, `#!/bin/sh\nexec '${process.execPath}' '${double}' ${extra} "$@"\n`, { mode: 0o755 });
    return file;
  };
  firecracker = wrapper('firecracker', '');
  stubborn = wrapper('firecracker-stubborn', '--double-ignore-ctrl-alt-del');
  kernel = path.join(tmp, 'vmlinux');
  fs.writeFileSync(kernel, Buffer.concat([Buffer.from([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1]), Buffer.alloc(4089)]));
  rootfs = path.join(tmp, 'rootfs.img');
  fs.writeFileSync(rootfs, '');
  fs.truncateSync(rootfs, 64 * 1024 * 1024);
  configDrive = path.join(tmp, 'config.img');
  fs.writeFileSync(configDrive, Buffer.alloc(64 * 1024));
});

afterEach(async () => {
  for (const { driver, handle } of started.splice(0)) await driver.kill(handle);
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
    kernelArgs: `console=ttyS0 root=/dev/vda rw panic=-1 ip=10.213.9.2::10.213.9.1:255.255.255.0:fc-test:eth0:off firedeck.vm=${id}`,
    rootfsPath: rootfs,
    rootfsFormat: 'raw',
    configDrivePath: configDrive,
    tap: 'fdtfc0',
    mac: '52:54:00:fc:00:01',
    runDir: path.join(tmp, id),
    ...overrides,
  };
}

async function startVm(driver: FirecrackerDriver, spec: VmLaunchSpec): Promise<VmHandle> {
  const handle = await driver.start(spec);
  started.push({ driver, handle });
  return handle;
}

function forget(handle: VmHandle): void {
  const index = started.findIndex((entry) => entry.handle === handle);
  if (index >= 0) started.splice(index, 1);
}

function calls(spec: VmLaunchSpec): Call[] {
  const log = path.join(spec.runDir, `${RUN_FILES.apiSocket}.calls.jsonl`);
  return fs
    .readFileSync(log, 'utf8')
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => JSON.parse(line) as Call);
}

/** Runs the double by itself (no driver) for requests the driver would never send. */
async function bareDouble(): Promise<FirecrackerApi> {
  const dir = fs.mkdtempSync(path.join(tmp, 'bare-'));
  const socket = path.join(dir, 'api.sock');
  const child = spawn(process.execPath, [double, '--api-sock', socket, '--id', 'bare'], { stdio: 'ignore' });
  children.push(child);
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  const api = new FirecrackerApi(socket, { timeoutMs: 2000 });
  await waitForApiSocket(api, 10_000, exited);
  return api;
}

async function rejection(promise: Promise<unknown>): Promise<FirecrackerApiError> {
  const err = await promise.then(
    () => null,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(FirecrackerApiError);
  return err as FirecrackerApiError;
}

describe('FirecrackerDriver against the API double', () => {
  it('configures the VM through the API in order, with bodies the spec accepts, then starts it', async () => {
    const driver = new FirecrackerDriver({ binary: firecracker, vsock: true });
    const spec = launchSpec();
    const handle = await startVm(driver, spec);

    expect(handle.controlSocket).toBe(path.join(spec.runDir, 'firecracker.sock'));
    expect(handle.console).toEqual({ kind: 'file', path: path.join(spec.runDir, 'serial.log') });
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
      '/network-interfaces/eth0',
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
    expect(body('/network-interfaces/eth0')).toEqual({
      iface_id: 'eth0',
      host_dev_name: 'fdtfc0',
      guest_mac: '52:54:00:fc:00:01',
    });
    expect(body('/serial')).toEqual({ serial_out_path: path.join(spec.runDir, 'serial.log') });
    expect(body('/vsock')).toEqual({ guest_cid: 3, uds_path: path.join(spec.runDir, 'vsock.sock') });
    expect(body('/actions')).toEqual({ action_type: 'InstanceStart' });

    // The (fake) guest wrote its marker to the file Firecracker was told to use.
    expect(fs.readFileSync(handle.console.path, 'utf8')).toMatch(/^FIREDECK-READY vm$/m);
    await expect(driver.inspect(handle)).resolves.toEqual({ alive: true, status: 'Running' });
  });

  it('stops gracefully with SendCtrlAltDel and awaits the exit', async () => {
    const driver = new FirecrackerDriver({ binary: firecracker });
    const initrd = path.join(tmp, 'initrd.img');
    fs.writeFileSync(initrd, 'initramfs');
    const spec = launchSpec({ configDrivePath: null, tap: null, mac: null, initrdPath: initrd });
    const handle = await startVm(driver, spec);

    await expect(driver.stop(handle, 10_000)).resolves.toBe('graceful');
    forget(handle);
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
    // The console outlives the process.
    expect(fs.readFileSync(handle.console.path, 'utf8')).toContain('reboot: Restarting system');
    await expect(driver.inspect(handle)).resolves.toEqual({ alive: false, status: null });
  });

  it('kills a guest that ignores Ctrl-Alt-Del once the timeout passes', async () => {
    const driver = new FirecrackerDriver({ binary: stubborn });
    const spec = launchSpec();
    const handle = await startVm(driver, spec);

    const before = Date.now();
    await expect(driver.stop(handle, 400)).resolves.toBe('killed');
    forget(handle);
    expect(Date.now() - before).toBeGreaterThanOrEqual(390);
    expect(pidAlive(handle.pid)).toBe(false);
    expect(fs.existsSync(handle.controlSocket)).toBe(false);
    expect(
      calls(spec)
        .filter((call) => call.path === '/actions')
        .map((call) => call.body),
    ).toEqual([{ action_type: 'InstanceStart' }, { action_type: 'SendCtrlAltDel' }]);
  });

  it('adopts a live VM from a fresh driver and refuses wrong pids and command lines', async () => {
    const spec = launchSpec();
    const handle = await startVm(new FirecrackerDriver({ binary: firecracker }), spec);

    // A restarted daemon: a new driver that did not spawn the process.
    const restarted = new FirecrackerDriver({ binary: firecracker });
    await expect(restarted.adopt(handle)).resolves.toBe(true);
    await expect(restarted.adopt({ ...handle, pid: process.pid })).resolves.toBe(false);
    await expect(restarted.adopt({ ...handle, cmdline: `${handle.cmdline}\0--other` })).resolves.toBe(false);
    await expect(restarted.adopt({ ...handle, controlSocket: path.join(spec.runDir, 'nothing.sock') })).resolves.toBe(
      false,
    );

    // Stopping an adopted VM has no exit event to await; it must still see the process end.
    await expect(restarted.stop(handle, 10_000)).resolves.toBe('graceful');
    forget(handle);
    await expect(restarted.adopt(handle)).resolves.toBe(false);
  });

  it('surfaces a Firecracker 400 as a typed error with its fault message, leaving nothing running', async () => {
    const driver = new FirecrackerDriver({ binary: firecracker });
    // The RPC layer bounds vCPUs; the driver passes them on, and the spec caps vcpu_count at 32.
    const spec = launchSpec({ vcpus: 33 });
    const err = await rejection(driver.start(spec));
    expect(err).toBeInstanceOf(FiredeckError);
    expect(err.method).toBe('PUT');
    expect(err.path).toBe('/machine-config');
    expect(err.status).toBe(400);
    expect(err.faultMessage).toMatch(/vcpu_count.*maximum 32/);
    expect(err.message).toContain(err.faultMessage);
    expect(err.toJSON().data?.details).toMatchObject({ method: 'PUT', path: '/machine-config', status: 400 });

    const log = calls(spec);
    expect(log.map((call) => call.path)).not.toContain('/actions');
    const cmdlinePid = Number(
      fs
        .readdirSync('/proc')
        .find((entry) => /^\d+$/.test(entry) && (readCmdline(Number(entry)) ?? '').includes(`--id\0${spec.id}`)) ?? 0,
    );
    expect(cmdlinePid === 0 || !pidAlive(cmdlinePid)).toBe(true);
    expect(fs.existsSync(path.join(spec.runDir, RUN_FILES.apiSocket))).toBe(false);
  });

  it('names a missing binary', async () => {
    const missing = path.join(tmp, 'bin', 'no-such-firecracker');
    const driver = new FirecrackerDriver({ binary: missing });
    const err = await driver.start(launchSpec()).then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(FiredeckError);
    expect((err as FiredeckError).kind).toBe('unavailable');
    expect((err as FiredeckError).message).toContain(missing);
    const availability = await driver.availability();
    expect(availability.available).toBe(false);
    expect(availability.reason).toContain(missing);
  });

  it('refuses a compressed kernel before spawning anything', async () => {
    const bzImage = path.join(tmp, 'bzImage');
    fs.writeFileSync(bzImage, Buffer.concat([Buffer.alloc(0x202), Buffer.from('HdrS')]));
    const spec = launchSpec({ kernelPath: bzImage });
    const err = await new FirecrackerDriver({ binary: firecracker }).start(spec).then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(FiredeckError);
    expect((err as FiredeckError).message).toMatch(/not an uncompressed vmlinux/);
    expect(fs.existsSync(path.join(spec.runDir, RUN_FILES.apiSocket))).toBe(false);
  });

  it('refuses qcow2 disks', async () => {
    const err = await new FirecrackerDriver({ binary: firecracker }).start(launchSpec({ rootfsFormat: 'qcow2' })).then(
      () => null,
      (e: unknown) => e,
    );
    expect((err as FiredeckError).kind).toBe('invalid_params');
  });

  it('fails with the process log when Firecracker exits before its socket answers', async () => {
    const spec = launchSpec();
    fs.mkdirSync(spec.runDir, { recursive: true });
    const failing = path.join(tmp, 'bin', 'firecracker-bad-flag');
    fs.writeFileSync(failing, `#!/bin/sh\nexec '${process.execPath}' '${double}' --no-such-flag "$@"\n`, {
      mode: 0o755,
    });
    const err = await new FirecrackerDriver({ binary: failing }).start(spec).then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(FiredeckError);
    expect((err as FiredeckError).message).toMatch(/exited \(code 1\) before its API socket answered/);
    expect(JSON.stringify((err as FiredeckError).details)).toContain('--no-such-flag');
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
      const err = await rejection(api.request('PUT', p, body));
      expect(err.status, `${p} ${JSON.stringify(body)}`).toBe(400);
      expect(err.faultMessage).toMatch(fault);
    }
    // The same resources with valid bodies pass, so the rejections above are about the bodies.
    await api.request('PUT', '/machine-config', { vcpu_count: 1, mem_size_mib: 128 });
    await api.request('PUT', '/serial', { serial_out_path: path.join(tmp, 'bare-serial.log') });
  });

  it('enforces the pre-boot and post-boot order', async () => {
    const api = await bareDouble();
    expect((await rejection(api.action('SendCtrlAltDel'))).faultMessage).toMatch(/not supported before starting/);
    expect((await rejection(api.action('InstanceStart'))).faultMessage).toMatch(/without kernel configuration/);
    expect((await rejection(api.request('PATCH', '/vm', { state: 'Paused' }))).faultMessage).toMatch(
      /not supported before starting/,
    );
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
      expect((await rejection(attempt)).faultMessage).toMatch(/not supported after starting the microVM/);
    }
  });

  it('checks what Firecracker checks beyond the schema: files, root drives', async () => {
    const api = await bareDouble();
    expect((await rejection(api.putBootSource({ kernel_image_path: path.join(tmp, 'absent') }))).faultMessage).toMatch(
      /kernel file cannot be opened/,
    );
    await api.putDrive({ drive_id: 'rootfs', path_on_host: rootfs, is_root_device: true, is_read_only: false });
    expect(
      (
        await rejection(
          api.putDrive({ drive_id: 'second', path_on_host: configDrive, is_root_device: true, is_read_only: true }),
        )
      ).faultMessage,
    ).toMatch(/root block device already exists/);
  });
});
