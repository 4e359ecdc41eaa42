import type { Page } from 'playwright-core';
import type { Vm } from '../../../src/shared/protocol/vm';
import { removeLinks } from '../../integration/daemon-helpers';
import { launchChromium, type ChromiumRig } from '../../rig/chromium';
import { startDaemon, type DaemonRig } from '../../rig/daemon';
import { startSshd, type Sshd } from '../../rig/sshd';
import { addSshHost, trustAndConnect } from './ui';
import { startWebMode, type WebMode } from './webMode';

/**
 * Everything between a test and a guest, all real: a root daemon on its own bridge and subnet, the rig's sshd
 * (with this daemon's `firedeckd` first on PATH), the app in web mode with no local host, and Chromium with
 * the app open and the sshd host added, trusted and connected. Every call the page makes goes through SSH.
 */
export interface SshStack {
  daemon: DaemonRig;
  sshd: Sshd;
  web: WebMode;
  browser: ChromiumRig;
  page: Page;
  /** Destroys the daemon's VMs and stops everything that was started, also after a failed start. */
  stop(): Promise<void>;
}

export interface SshStackOptions {
  /** Prefix of this suite's bridge, TAPs and leases (`fdt…`, so that leftovers can be found and removed). */
  prefix: string;
  /** The suite's own private subnet, e.g. 10.213.50.0/24. */
  cidr: string;
  /** Puts images into the daemon's state dir before anything else starts. */
  installImages(stateDir: string): Promise<unknown>;
}

export async function startSshStack(options: SshStackOptions): Promise<SshStack> {
  const parts: Partial<Omit<SshStack, 'stop'>> = {};
  const stop = async (): Promise<void> => {
    await parts.browser?.close();
    await parts.web?.stop();
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
      },
    }));
    await options.installImages(daemon.stateDir);
    const sshd = (parts.sshd = await startSshd({ pathPrepend: [daemon.binDir] }));
    const web = (parts.web = await startWebMode());
    const browser = (parts.browser = await launchChromium());
    const page = (parts.page = await browser.newPage());
    page.on('dialog', (d) => void d.accept());
    await page.goto(web.url);
    await addSshHost(page, sshd, 'rig');
    await trustAndConnect(page, 'rig', sshd.hostKeyFingerprint);
    return { daemon, sshd, web, browser, page, stop };
  } catch (err) {
    await stop().catch(() => undefined);
    throw err;
  }
}
