import path from 'node:path';
import { ImageCatalog } from '../../images/catalog';
import { parseCidr } from '../../net/cidr';
import { LeaseStore } from '../../net/leases';
import { openDb, type Db } from '../../store/db';
import { VmStore } from '../../store/vmStore';
import { EventBus } from '../eventBus';
import { QemuDriver } from '../qemu/qemuDriver';
import { VmService } from '../vmService';

/** Test support (not used by the daemon): a VmService as firedeckd builds it, with the real QEMU driver. */
export interface TestVmService {
  db: Db;
  service: VmService;
  vms: VmStore;
  leases: LeaseStore;
  events: EventBus;
  /** Shuts the service down and closes its store. */
  close(): void;
}

/**
 * On the store in `stateDir` (a second call on the same dir is the restarted daemon), with run dir `runDir`, and
 * the suite's own bridge, device prefix and subnet (reconcile creates the bridge).
 */
export function testVmService(opts: {
  stateDir: string;
  runDir: string;
  bridge: string;
  prefix: string;
  cidr: string;
  /** The bus the service emits on (a test may subscribe first); a new one by default. */
  events?: EventBus;
}): TestVmService {
  const events = opts.events ?? new EventBus();
  const db = openDb(path.join(opts.stateDir, 'firedeck.db'));
  const subnet = parseCidr(opts.cidr);
  const catalog = new ImageCatalog(opts.stateDir);
  const vms = new VmStore(db);
  const leases = new LeaseStore(db, subnet, opts.prefix);
  const service = new VmService({
    config: {
      stateDir: opts.stateDir,
      runDir: opts.runDir,
      bridge: opts.bridge,
      devicePrefix: opts.prefix,
      consoleLogMaxBytes: 65536,
      browserVmTtlSeconds: 60,
      rootfsMode: 'clone',
      stopTimeoutSeconds: 5,
    },
    subnet,
    vms,
    leases,
    drivers: [new QemuDriver({ qemuAccel: 'tcg' })],
    images: { resolve: async (ref) => catalog.resolve(ref) },
    events,
    log: () => undefined,
  });
  return {
    db,
    service,
    vms,
    leases,
    events,
    close: () => {
      service.shutdown();
      db.close();
    },
  };
}
