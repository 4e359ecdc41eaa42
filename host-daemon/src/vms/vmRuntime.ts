import path from 'node:path';
import type { DaemonConfig } from '../config';
import { parseCidr } from '../net/cidr';
import { LeaseStore } from '../net/leases';
import type { CallRecord } from '../rpc/server';
import { AuditLog } from '../store/auditLog';
import { openDb, type Db } from '../store/db';
import { VmStore } from '../store/vmStore';
import type { VmDriver } from './driver';
import { EventBus } from './eventBus';
import { VmService, type ImageResolver } from './vmService';
import { VmStatsSampler } from './vmStats';

/** The daemon's VM side, assembled from config: store, leases, event bus, lifecycle and audit. */
export interface VmRuntime {
  db: Db;
  events: EventBus;
  audit: AuditLog;
  vms: VmService;
  /** Live VMs' CPU and memory, published as `vm.stats` events. */
  stats: VmStatsSampler;
  /** Feed for RpcServer's `onMutatingCall` (and ChannelService's `channel.open`): one append-only audit row each. */
  recordCall(record: Omit<CallRecord, 'method'> & { method: string }): void;
  close(): void;
}

/** The daemon's SQLite store inside its state dir. */
export function stateDbPath(stateDir: string): string {
  return path.join(stateDir, 'firedeck.db');
}

export function createVmRuntime(opts: {
  config: DaemonConfig;
  drivers: VmDriver[];
  images: ImageResolver;
  attachGid: number | null;
  log: (line: string) => void;
}): VmRuntime {
  const { config } = opts;
  const db = openDb(stateDbPath(config.stateDir));
  const subnet = parseCidr(config.cidr);
  const events = new EventBus();
  const audit = new AuditLog(db);
  const vms = new VmService({
    config,
    subnet,
    vms: new VmStore(db),
    leases: new LeaseStore(db, subnet, config.devicePrefix),
    drivers: opts.drivers,
    images: opts.images,
    events,
    log: opts.log,
    attachGid: opts.attachGid,
  });
  const stats = new VmStatsSampler({
    listVms: () => vms.list(),
    emit: (event) => events.emit(event),
    ...(config.statsIntervalMs !== undefined ? { intervalMs: config.statsIntervalMs } : {}),
  });
  stats.start();
  return {
    db,
    events,
    audit,
    vms,
    stats,
    recordCall(record) {
      try {
        audit.append({
          user: record.caller.user,
          uid: record.caller.uid,
          method: record.method,
          params: record.params,
          ok: record.ok,
          errorKind: record.error?.kind ?? null,
          errorMessage: record.error?.message ?? null,
        });
      } catch (err) {
        opts.log(`audit: could not record ${record.method}: ${String(err)}`);
      }
    },
    close() {
      stats.close();
      vms.shutdown();
      db.close();
    },
  };
}
