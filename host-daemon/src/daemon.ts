import os from 'node:os';
import path from 'node:path';
import { PROTOCOL_VERSION, type DaemonInfo } from '../../src/shared/protocol/daemon';
import { FIREDECK_VERSION } from '../../src/shared/version';
import { registerAuditHandlers } from './audit/auditHandlers';
import { AuthService } from './auth/authService';
import { registerAuthHandlers } from './auth/authHandlers';
import { AuthStore } from './auth/authStore';
import { createCredentialWriter } from './auth/credentialWriter';
import { ChannelService } from './channels/channelService';
import type { DaemonConfig } from './config';
import { ImageCatalog } from './images/catalog';
import { registerImageHandlers } from './images/handlers';
import { ImageService } from './images/service';
import { OfflineDiskWriter } from './credentials/offlineDisk';
import { registerProxyHandlers } from './credentials/proxyHandlers';
import { CredentialVault } from './credentials/vault';
import { vaultKeySource } from './credentials/vaultKey';
import { parseCidr } from './net/cidr';
import { GuestIsolation } from './net/isolation';
import { LeaseStore } from './net/leases';
import { loadPeerCredentials } from './rpc/peerCredentials';
import { RpcServer, type CallRecord } from './rpc/server';
import { AuditLog } from './store/auditLog';
import { openDb, stateDbPath, type Db } from './store/db';
import { VmStore } from './store/vmStore';
import { hostResources } from './system/hostResources';
import { groupId } from './system/users';
import { driverPreference } from './vms/availability';
import type { VmDriver } from './vms/driver';
import { DriverProbes } from './vms/driverProbes';
import { EventBus } from './vms/eventBus';
import { imagesInUse, vmsByImage } from './vms/imagesInUse';
import type { ReconcileReport } from './vms/reconcile';
import { createVmDrivers } from './vms/vmDrivers';
import { registerVmHandlers } from './vms/vmHandlers';
import { VmService } from './vms/vmService';
import { VmHealthMonitor } from './vms/vmHealth';
import { VmStatsSampler } from './vms/vmStats';

export interface DaemonOptions {
  log: (line: string) => void;
  env?: NodeJS.ProcessEnv;
  /** The VM drivers; by default the ones the config and environment build (`createVmDrivers`). */
  drivers?: VmDriver[];
}

/** `firedeckd serve`, assembled: every service of the daemon, built once, and the RPC server that serves them. */
export interface Daemon {
  db: Db;
  events: EventBus;
  vms: VmService;
  images: ImageService;
  auth: AuthService;
  server: RpcServer;
  /** Listens on the socket (refusing to run beside a live daemon), then reconciles the VMs with the machine. */
  start(): Promise<ReconcileReport>;
  /** Cancels image builds, closes the socket and stops watching VMs; the VMs keep running. */
  close(): Promise<void>;
}

/**
 * The daemon's one composition root: store, leases, events, audit, drivers (their probes cached), VMs,
 * statistics, images, channels, and the RPC server with every handler, `daemon.info` included.
 */
export function createDaemon(config: DaemonConfig, options: DaemonOptions): Daemon {
  const { log } = options;
  const startedAt = new Date().toISOString();
  const socketGid = groupId(config.group);
  // First: without the kernel's word on who calls, the daemon serves nobody (and opens nothing).
  const peerCredentials = loadPeerCredentials();

  const db = openDb(stateDbPath(config.stateDir));
  const subnet = parseCidr(config.cidr);
  const events = new EventBus();
  const audit = new AuditLog(db);
  const drivers = options.drivers ?? createVmDrivers(config, options.env ?? process.env, log);
  const probes = new DriverProbes(drivers);
  const catalog = new ImageCatalog(config.stateDir);
  const vault = CredentialVault.open({
    db,
    key: vaultKeySource({
      stateDir: config.stateDir,
      ...(config.vaultKeyFile ? { keyFile: config.vaultKeyFile } : {}),
    }),
    log,
  });
  // Plaintext is staged for debugfs here: the run dir is root's (0700) and a tmpfs on real hosts.
  const offlineDisks = new OfflineDiskWriter({ stagingDir: path.join(config.runDir, 'staging'), log });
  const leases = new LeaseStore(db, subnet, config.devicePrefix);
  // Guests reach neither each other nor the host beyond guest-allow (and the selftest issuer), nor spoof.
  const isolation = new GuestIsolation(
    {
      devicePrefix: config.devicePrefix,
      bridge: config.bridge,
      subnet,
      allow: config.guestAllow,
      ...(config.selftest ? { selftestIssuer: config.selftest.issuer } : {}),
    },
    { leases: () => leases.list(), log },
  );
  const vms = new VmService({
    config,
    subnet,
    vms: new VmStore(db),
    leases,
    isolation,
    drivers,
    images: { resolve: async (ref) => catalog.resolve(ref) },
    events,
    log,
    // Sealed in the vault; unsealed only onto a browser VM's config drive as it is made.
    browserProxy: () => vault.getProxy()?.reveal() ?? null,
    // A disk an interrupted offline write left behind is made whole (old files or new) before it boots.
    beforeBoot: async (_id, rootfs) => {
      if (rootfs.format === 'raw' && OfflineDiskWriter.hasPendingWrite(rootfs.path)) {
        const outcome = await offlineDisks.recover(rootfs.path, { vmStopped: () => true });
        log(`offline write on ${rootfs.path} recovered before boot: ${outcome}`);
      }
    },
  });
  const stats = new VmStatsSampler({
    listVms: () => vms.list(),
    emit: (event) => events.emit(event),
    ...(config.statsIntervalMs !== undefined ? { intervalMs: config.statsIntervalMs } : {}),
  });
  const health = new VmHealthMonitor({
    targets: () => vms.healthTargets(),
    setUnresponsive: (id, since) => vms.setUnresponsive(id, since),
    emit: (event) => events.emit(event),
    log,
  });
  const images = new ImageService({
    catalog,
    emit: (event) => events.emit(event),
    inUse: () => imagesInUse(vms.list()),
    pinnedBy: () => vmsByImage(vms.list()),
  });
  const auth = new AuthService({
    store: new AuthStore(db),
    vms,
    vault,
    writer: createCredentialWriter({ vms, offlineDisks }),
    emit: (event) => events.emit(event),
    log,
    config: { cliImage: config.cliImage, browserImage: config.browserImage, timeouts: config.authTimeouts },
  });
  const channels = new ChannelService(vms, log, (record) => recordCall(audit, record, log));

  const server = new RpcServer({ log, peerCredentials, onMutatingCall: (record) => recordCall(audit, record, log) });
  let reconciled: (done: unknown) => void = () => undefined;
  const vmsReconciled = new Promise<unknown>((resolve) => (reconciled = resolve));
  registerVmHandlers(server, vms, events, vmsReconciled, stats);
  registerImageHandlers(server, images);
  registerAuthHandlers(server, auth, vmsReconciled);
  registerAuditHandlers(server, audit);
  registerProxyHandlers(server, vault);
  server.registerChannelOpener((socket, id, params, caller) => channels.open(socket, id, params, caller));
  server.register('daemon.info', () => daemonInfo(config, probes, startedAt));

  stats.start();
  const closeVms = (): void => {
    stats.close();
    health.close();
    vms.shutdown();
    db.close();
  };
  return {
    db,
    events,
    vms,
    images,
    auth,
    server,
    async start() {
      // listen() first: it refuses to run beside a live daemon, which must never be reconciled under its feet.
      await server.listen(config.socketPath, 0o660, socketGid);
      try {
        const report = await vms.reconcile();
        // Sessions whose run died with the old process end as failed, their browser VMs destroyed.
        await auth.settleAfterRestart();
        reconciled(report);
        // Probed only once reconcile has adopted them: its QMP sessions come first.
        health.start();
        return report;
      } catch (err) {
        await server.close();
        closeVms();
        throw err;
      }
    },
    async close() {
      images.cancelAll();
      await auth.close();
      await server.close();
      closeVms();
    },
  };
}

/**
 * What `daemon.info` answers: version, host, each driver's availability (probed once, see DriverProbes), and the
 * memory and disk free right now (the create form checks a new VM against them).
 */
export async function daemonInfo(
  config: Pick<DaemonConfig, 'driver' | 'stateDir'>,
  probes: DriverProbes,
  startedAt: string,
): Promise<DaemonInfo> {
  const [drivers, resources] = await Promise.all([probes.all(), hostResources(config.stateDir)]);
  const firstAvailable = driverPreference(config)
    .map((name) => drivers.find((d) => d.name === name && d.available))
    .find((d) => d !== undefined);
  return {
    version: FIREDECK_VERSION,
    protocolVersion: PROTOCOL_VERSION,
    hostname: os.hostname(),
    pid: process.pid,
    startedAt,
    drivers,
    defaultDriver: firstAvailable?.name ?? null,
    resources,
  };
}

/**
 * One append-only audit row per mutating call (RpcServer's `onMutatingCall`) and per `channel.open`
 * (ChannelService); a failure is logged, not thrown.
 */
export function recordCall(
  audit: AuditLog,
  record: Omit<CallRecord, 'method'> & { method: string },
  log: (line: string) => void,
): void {
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
    log(`audit: could not record ${record.method}: ${String(err)}`);
  }
}
