import type { DriverAvailability } from '../../../src/shared/protocol/daemon';
import type { VmDriver } from './driver';
import { probeDrivers } from './vmDrivers';

/**
 * What each driver says of itself on this host, as `daemon.info` reports it: probed once per daemon (each probe
 * forks the hypervisor's `--version`, `systemd-detect-virt`, …) and then kept. A probe that fails is retried on
 * the next call. `firedeckd doctor` probes afresh; `vm.create` asks the driver itself.
 */
export class DriverProbes {
  private probed: Promise<DriverAvailability[]> | null = null;

  constructor(private readonly drivers: readonly VmDriver[]) {}

  all(): Promise<DriverAvailability[]> {
    this.probed ??= probeDrivers(this.drivers).catch((err: unknown) => {
      this.probed = null;
      throw err;
    });
    return this.probed;
  }
}
