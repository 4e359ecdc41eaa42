import type { Page } from 'playwright-core';
import type { Vm } from '../../../src/shared/protocol/vm';
import { removeLinks } from '../../integration/daemon-helpers';
import { startDaemon, type DaemonRig } from '../../rig/daemon';
import { startSshd, type Sshd } from '../../rig/sshd';
import { addSshHost, trustAndConnect } from './ui';
import { startApp, type AppMode, type AppUnderTest } from './app';

/**
 * Everything between a test and a guest, all real: a root daemon on its own bridge and subnet, the rig's sshd
 * (with this daemon's `firedeckd` first on PATH), the app (web mode in Chromium, or Electron) with no local
 * host, its window open and the sshd host added, trusted and connected. Every call the page makes goes
 * through SSH.
 */
export interface SshStack {
  daemon: DaemonRig;
  sshd: Sshd;
  app: AppUnderTest;
  page: Page;
  /** Destroys the daemon's VMs and stops everything that was started, also after a failed start. */
  stop(): Promise<void>;
}

export interface RigHostOptions {
  /** Prefix of this host's bridge, TAPs and leases (`fdt…`, so that leftovers can be found and removed). */
  prefix: string;
  /** The host's own private subnet, e.g. 10.213.50.0/24. */
  cidr: string;
  /** Puts images into the daemon's state dir before anything else starts. */
  installImages(stateDir: string): Promise<unknown>;
  /** More of the daemon's environment (e.g. FIREDECK_SELFTEST_ISSUER). */
  env?: Record<string, string>;
  /** Serve SSH through a link the test can cut and resume (`sshd.cut()`, `sshd.resume()`). */
  cuttable?: boolean;
}

/**
 * One real host for the app to reach: a root daemon with its own state dir, socket, bridge and subnet, and an
 * sshd of its own whose sessions find this daemon's `firedeckd` first on PATH. Several can run side by side.
 */
export interface RigHost {
  daemon: DaemonRig;
  sshd: Sshd;
  /** Destroys the daemon's VMs and stops the sshd and daemon, also after a failed start. */
  stop(): Promise<void>;
}

export async function startRigHost(options: RigHostOptions): Promise<RigHost> {
  const parts: { daemon?: DaemonRig; sshd?: Sshd } = {};
  const stop = async (): Promise<void> => {
    await parts.sshd?.stop();
    const daemon = parts.daemon;
    if (daemon) {
      for (const vm of await daemon.call('vm.list', {}).catch(() => [] as Vm[])) {
        await daemon.call('vm.destroy', { id: vm.id }).catch(() => undefined);
      }
      await daemon.stop();
    }
    removeLinks(options.prefix);
  };
  try {
    removeLinks(options.prefix);
    const daemon = (parts.daemon = await startDaemon({
      env: {
        FIREDECK_BRIDGE: `${options.prefix}br0`,
        FIREDECK_CIDR: options.cidr,
        FIREDECK_DEVICE_PREFIX: options.prefix,
        ...options.env,
      },
    }));
    await options.installImages(daemon.stateDir);
    const sshd = (parts.sshd = await startSshd({ pathPrepend: [daemon.binDir], cuttable: options.cuttable ?? false }));
    return { daemon, sshd, stop };
  } catch (err) {
    await stop().catch(() => undefined);
    throw err;
  }
}

export interface SshStackOptions extends Omit<RigHostOptions, 'cuttable'> {
  mode: AppMode;
}

export async function startSshStack(options: SshStackOptions): Promise<SshStack> {
  let host: RigHost | null = null;
  let app: AppUnderTest | null = null;
  const stop = async (): Promise<void> => {
    await app?.stop();
    await host?.stop();
  };
  try {
    host = await startRigHost(options);
    app = await startApp(options.mode);
    const page = app.page;
    await addSshHost(page, host.sshd, 'rig');
    await trustAndConnect(page, 'rig', host.sshd.hostKeyFingerprint);
    return { daemon: host.daemon, sshd: host.sshd, app, page, stop };
  } catch (err) {
    await stop().catch(() => undefined);
    throw err;
  }
}
