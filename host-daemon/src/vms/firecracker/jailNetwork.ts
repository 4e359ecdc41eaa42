import fs from 'node:fs';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { z } from 'zod';
import { FiredeckError } from '../../../../src/shared/errors';

const run = promisify(execFile);

/**
 * A jailed VM's own network namespace, laid out as Firecracker's guide for namespaced VMs does
 * (docs/snapshotting/network-for-clones.md): `ip netns add`, the TAP created inside it with `ip tuntap`, and a
 * veth pair to the host. Where the guide routes and NATs, the daemon bridges instead, so that the guest keeps
 * its leased address on the daemon's bridge:
 *
 *   host: <bridge> ── <lease's TAP name, now the veth's host end>
 *                         │ veth
 *   netns:             veth0 ── br0 ── tap0 ◄── Firecracker (TUNSETIFF as the jail's uid)
 *
 * The host end takes the name and bridge port flags (isolation, learning, …) of the TAP the daemon made for the
 * VM, which it replaces: rules keyed on that device name keep applying to the VM's traffic. tap0 belongs to the
 * jail's uid and gid (`ip tuntap … user … group …`), so no other uid can attach to it; the jailed Firecracker,
 * without CAP_NET_ADMIN, could neither create a TAP nor attach to one another uid owns.
 */
export interface JailNetwork {
  /** Name under /run/netns, and the path the jailer's --netns takes. */
  netns: string;
  netnsPath: string;
  /** The TAP inside the namespace, the `host_dev_name` Firecracker opens. */
  tap: string;
  /** The veth end on the host, named as the VM's TAP was. */
  hostDevice: string;
}

export const JAIL_TAP = 'tap0';
const JAIL_VETH = 'veth0';
const JAIL_BRIDGE = 'br0';

/** Bridge port flags `bridge -d -j link show` reports and `bridge link set` takes, copied to the veth. */
const PORT_FLAGS = [
  'isolated',
  'learning',
  'flood',
  'mcast_flood',
  'bcast_flood',
  'neigh_suppress',
  'hairpin',
  'guard',
  'root_block',
  'proxy_arp',
  'locked',
] as const;

const LinkInfo = z.array(
  z
    .object({
      ifname: z.string(),
      master: z.string().optional(),
      linkinfo: z.object({ info_kind: z.string().optional() }).loose().optional(),
    })
    .loose(),
);
const PortInfo = z.array(z.record(z.string(), z.unknown()));

async function command(argv: string[]): Promise<string> {
  try {
    const { stdout } = await run(argv[0]!, argv.slice(1), { timeout: 10_000 });
    return stdout;
  } catch (err) {
    const stderr = (err as { stderr?: string }).stderr?.trim() ?? '';
    throw new FiredeckError('internal', `${argv.join(' ')} failed: ${stderr || String(err)}`, {
      hint: 'firedeckd manages network namespaces and devices with iproute2 and needs root (CAP_NET_ADMIN, CAP_SYS_ADMIN)',
    });
  }
}

export function netnsPath(netns: string): string {
  return `/run/netns/${netns}`;
}

/**
 * Moves the VM's link into its own namespace: replaces the host TAP `hostDevice` by the veth end of the same
 * name on the same bridge, and makes tap0 (owned by uid:gid) and the veth's other end, bridged, inside.
 */
export async function createJailNetwork(opts: {
  netns: string;
  hostDevice: string;
  uid: number;
  gid: number;
  /** The host device's bridge port, read before a stale namespace (which may take it along) was removed. */
  port?: HostPort;
}): Promise<JailNetwork> {
  if (!/^[A-Za-z0-9_.-]{1,64}$/.test(opts.netns)) {
    throw new FiredeckError('invalid_params', `not a network namespace name: ${JSON.stringify(opts.netns)}`);
  }
  const network: JailNetwork = {
    netns: opts.netns,
    netnsPath: netnsPath(opts.netns),
    tap: JAIL_TAP,
    hostDevice: opts.hostDevice,
  };
  // Read before anything is removed: the bridge and flags the daemon gave the VM's device.
  const host = opts.port ?? (await hostPort(opts.hostDevice));
  // A namespace an interrupted start or a crash left behind (its veth, if it was the host device, goes with it).
  await removeJailNetwork(opts.netns);
  await command(['ip', 'netns', 'add', opts.netns]);
  try {
    const ns = ['ip', '-n', opts.netns];
    await command([...ns, 'link', 'set', 'lo', 'up']);
    await command([
      ...ns,
      'tuntap',
      'add',
      'dev',
      JAIL_TAP,
      'mode',
      'tap',
      'user',
      String(opts.uid),
      'group',
      String(opts.gid),
    ]);
    await command([...ns, 'link', 'add', JAIL_BRIDGE, 'type', 'bridge']);
    if ((await hostPort(opts.hostDevice)).exists) await command(['ip', 'link', 'del', opts.hostDevice]);
    await command([
      'ip',
      'link',
      'add',
      opts.hostDevice,
      'type',
      'veth',
      'peer',
      'name',
      JAIL_VETH,
      'netns',
      opts.netns,
    ]);
    for (const dev of [JAIL_VETH, JAIL_TAP]) await command([...ns, 'link', 'set', dev, 'master', JAIL_BRIDGE]);
    for (const dev of [JAIL_BRIDGE, JAIL_VETH, JAIL_TAP]) await command([...ns, 'link', 'set', dev, 'up']);
    if (host.master !== null) {
      await command(['ip', 'link', 'set', opts.hostDevice, 'master', host.master]);
      const flags = host.flags.flatMap(([flag, on]) => [flag, on ? 'on' : 'off']);
      if (flags.length > 0) await command(['bridge', 'link', 'set', 'dev', opts.hostDevice, ...flags]);
    }
    await command(['ip', 'link', 'set', opts.hostDevice, 'up']);
  } catch (err) {
    await removeJailNetwork(opts.netns).catch(() => undefined);
    throw err;
  }
  return network;
}

/**
 * Deletes the namespace with everything in it. Its veth's host end is deleted first, by name and only while it
 * is a veth: the kernel tears a namespace down asynchronously, after its last user (a process still holding
 * the TAP) is gone, and a VM booting again meanwhile would find its old device about to vanish.
 */
export async function removeJailNetwork(netns: string, hostDevice: string | null = null): Promise<void> {
  if (hostDevice !== null) {
    const links = LinkInfo.parse(JSON.parse(await command(['ip', '-d', '-j', 'link', 'show'])));
    const link = links.find((l) => l.ifname === hostDevice);
    if (link?.linkinfo?.info_kind === 'veth') await command(['ip', 'link', 'del', hostDevice]);
  }
  if (!fs.existsSync(netnsPath(netns))) return;
  await command(['ip', 'netns', 'del', netns]);
}

/** A host device as a bridge port: its bridge and the port flags set on it. */
export interface HostPort {
  exists: boolean;
  master: string | null;
  flags: [string, boolean][];
}

export async function hostPort(device: string): Promise<HostPort> {
  const links = LinkInfo.parse(JSON.parse(await command(['ip', '-j', 'link', 'show'])));
  const link = links.find((l) => l.ifname === device);
  if (link === undefined) return { exists: false, master: null, flags: [] };
  if (link.master === undefined) return { exists: true, master: null, flags: [] };
  const ports = PortInfo.parse(JSON.parse(await command(['bridge', '-d', '-j', 'link', 'show', 'dev', device])));
  const port = ports[0] ?? {};
  const flags = PORT_FLAGS.filter((f) => typeof port[f] === 'boolean').map(
    (f) => [f, port[f] as boolean] as [string, boolean],
  );
  return { exists: true, master: link.master, flags };
}
