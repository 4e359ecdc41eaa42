import type { DriverAvailability } from '../../../src/shared/protocol/daemon';
import type { DaemonConfig } from '../config';
import type { VmDriver } from './driver';
import { FirecrackerDriver } from './firecracker/driver';
import { firecrackerSettings } from './firecracker/settings';
import { QemuDriver } from './qemu/qemuDriver';

/** The daemon's VM drivers, best first, built from its config the one way `serve` and `doctor` both use. */
export function createVmDrivers(
  config: DaemonConfig,
  env: NodeJS.ProcessEnv = process.env,
  log: (line: string) => void = () => undefined,
): VmDriver[] {
  return [new FirecrackerDriver({ ...firecrackerSettings(env, config), log }), new QemuDriver(config)];
}

/** What each driver says of itself on this host (binary, version, acceleration, graceful stop, why not). */
export function probeDrivers(drivers: readonly VmDriver[]): Promise<DriverAvailability[]> {
  return Promise.all(drivers.map((d) => d.availability()));
}
