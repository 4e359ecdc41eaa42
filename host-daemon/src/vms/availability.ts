import fs from 'node:fs';
import path from 'node:path';
import { execFile, spawnSync } from 'node:child_process';
import { promisify } from 'node:util';
import type { DriverAvailability, DriverName, GracefulStop } from '../../../src/shared/protocol/daemon';
import type { DaemonConfig } from '../config';

const run = promisify(execFile);

/** Finds an executable on PATH (or the given absolute path). */
export function findExecutable(name: string, searchPath = process.env.PATH ?? ''): string | null {
  if (name.includes('/')) return isExecutable(name) ? name : null;
  for (const dir of searchPath.split(':')) {
    if (dir === '') continue;
    const candidate = path.join(dir, name);
    if (isExecutable(candidate)) return candidate;
  }
  return null;
}

function isExecutable(file: string): boolean {
  try {
    fs.accessSync(file, fs.constants.X_OK);
    return fs.statSync(file).isFile();
  } catch {
    return false;
  }
}

export async function versionOf(binary: string): Promise<string | null> {
  try {
    const { stdout } = await run(binary, ['--version'], { timeout: 5000 });
    return stdout.split('\n')[0]?.trim() ?? null;
  } catch {
    return null;
  }
}

/**
 * Whether this host is itself a virtual machine (systemd-detect-virt). Nested KVM is often present but unusable
 * (guests stall in early boot), so `auto` prefers TCG there.
 */
export function runsInsideVm(): boolean {
  const detect = findExecutable('systemd-detect-virt');
  if (detect === null) return false;
  const res = spawnSync(detect, ['--vm', '--quiet'], { timeout: 5000 });
  return res.status === 0;
}

/** Whether /dev/kvm can be opened for read and write by this process. */
export function kvmAccessible(): boolean {
  try {
    fs.accessSync('/dev/kvm', fs.constants.R_OK | fs.constants.W_OK);
    return true;
  } catch {
    return false;
  }
}

/** QEMU presses the ACPI power button (QMP system_powerdown), which every image's kernel and systemd handle. */
const QEMU_GRACEFUL_STOP: GracefulStop = { support: 'supported', reason: 'ACPI power button (QMP system_powerdown)' };

export async function probeQemu(config: Pick<DaemonConfig, 'qemuAccel'>): Promise<DriverAvailability> {
  const binary = findExecutable('qemu-system-x86_64');
  if (binary === null) {
    return {
      name: 'qemu',
      available: false,
      binary: null,
      version: null,
      accel: null,
      reason: 'qemu-system-x86_64 not found: apt-get install qemu-system-x86',
      gracefulStop: QEMU_GRACEFUL_STOP,
    };
  }
  const kvm = kvmAccessible();
  const nested = kvm && config.qemuAccel === 'auto' && runsInsideVm();
  const accel =
    config.qemuAccel === 'tcg' ? 'tcg' : config.qemuAccel === 'kvm' ? 'kvm' : kvm && !nested ? 'kvm' : 'tcg';
  const reason =
    accel === 'kvm'
      ? null
      : nested
        ? 'this host is itself a VM, where nested KVM often stalls guests: using TCG emulation (slow); set FIREDECK_QEMU_ACCEL=kvm if nested KVM works here'
        : 'no usable KVM: guests run under TCG emulation (slow)';
  return {
    name: 'qemu',
    available: true,
    binary,
    version: await versionOf(binary),
    accel,
    reason,
    gracefulStop: QEMU_GRACEFUL_STOP,
  };
}

/** The drivers a new VM may get, best first: the one it asks for, else the configured one, else Firecracker then QEMU. */
export function driverPreference(config: Pick<DaemonConfig, 'driver'>, requested?: DriverName): DriverName[] {
  if (requested !== undefined) return [requested];
  if (config.driver !== undefined && config.driver !== 'auto') return [config.driver];
  return ['firecracker', 'qemu'];
}
