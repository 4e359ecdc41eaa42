import { execFile } from 'node:child_process';
import crypto from 'node:crypto';
import { promisify } from 'node:util';
import { z } from 'zod';
import { FiredeckError } from '../../../src/shared/errors';
import type { Subnet } from './cidr';
import type { Lease } from './leases';

const run = promisify(execFile);

async function ip(args: string[]): Promise<string> {
  try {
    const { stdout } = await run('ip', args, { timeout: 10_000 });
    return stdout;
  } catch (err) {
    const stderr = (err as { stderr?: string }).stderr?.trim() ?? '';
    throw new FiredeckError('internal', `ip ${args.join(' ')} failed: ${stderr || String(err)}`, {
      hint: 'firedeckd manages network devices with iproute2 and needs root (CAP_NET_ADMIN).',
    });
  }
}

const LinkList = z.array(z.object({ ifname: z.string() }).loose());
const AddrList = z.array(
  z
    .object({
      ifname: z.string(),
      addr_info: z.array(z.object({ family: z.string(), local: z.string(), prefixlen: z.number() }).loose()).optional(),
    })
    .loose(),
);

const LinkAddress = z.array(z.object({ address: z.string().optional() }).loose());

/** The bridge's own MAC: locally administered unicast, derived from its name (02:fe:…; VMs' are 02:fd:…). */
export function bridgeMac(bridge: string): string {
  const h = crypto.createHash('sha256').update(bridge).digest();
  return [0x02, 0xfe, h[0]!, h[1]!, h[2]!, h[3]!].map((b) => b.toString(16).padStart(2, '0')).join(':');
}

export async function linkExists(name: string): Promise<boolean> {
  const out = await ip(['-j', 'link', 'show']);
  return LinkList.parse(JSON.parse(out)).some((l) => l.ifname === name);
}

export async function listLinks(prefix: string): Promise<string[]> {
  const out = await ip(['-j', 'link', 'show']);
  return LinkList.parse(JSON.parse(out))
    .map((l) => l.ifname)
    .filter((n) => n.startsWith(prefix));
}

/** Creates the bridge with the subnet's gateway address if missing; idempotent. */
export async function ensureBridge(bridge: string, subnet: Subnet): Promise<void> {
  if (!(await linkExists(bridge))) await ip(['link', 'add', bridge, 'type', 'bridge']);
  // A MAC of its own: a bridge without one takes its lowest port's, so it would change as VMs come and go, and
  // guests (whom the host never ARPs, see ensureGuestLink) would keep sending to the old one.
  const mac = bridgeMac(bridge);
  const shown = LinkAddress.parse(JSON.parse(await ip(['-j', 'link', 'show', 'dev', bridge])));
  if (shown[0]?.address !== mac) await ip(['link', 'set', 'dev', bridge, 'address', mac]);
  const addrs = AddrList.parse(JSON.parse(await ip(['-j', 'addr', 'show', 'dev', bridge])));
  const has = addrs.some((a) => (a.addr_info ?? []).some((i) => i.family === 'inet' && i.local === subnet.gateway));
  if (!has) await ip(['addr', 'add', `${subnet.gateway}/${subnet.prefix}`, 'dev', bridge]);
  await ip(['link', 'set', bridge, 'up']);
}

export async function deleteLink(name: string): Promise<void> {
  if (await linkExists(name)) await ip(['link', 'del', name]);
}

/**
 * A TAP for one VM, enslaved to the bridge as an isolated port (the bridge forwards nothing between two
 * isolated ports: guests reach the host, never each other); an existing one of the same name is reused.
 */
export async function ensureTap(name: string, bridge: string): Promise<void> {
  if (!(await linkExists(name))) await ip(['tuntap', 'add', 'dev', name, 'mode', 'tap']);
  await ip(['link', 'set', name, 'master', bridge]);
  await ip(['link', 'set', 'dev', name, 'type', 'bridge_slave', 'isolated', 'on']);
  await ip(['link', 'set', name, 'up']);
}

/**
 * A VM's link: its TAP, enslaved to the bridge (an existing one of the same name is reused), and a permanent
 * neighbour entry on the bridge binding the leased address to the VM's MAC. With it the host never asks who has
 * a guest's address: no ARP round trip that a guest starved of CPU (TCG on a loaded host) fails to answer in
 * time, and no other guest can claim the address with a forged ARP reply.
 */
export async function ensureGuestLink(lease: Lease, bridge: string): Promise<void> {
  await ensureTap(lease.tap, bridge);
  await ip(['neigh', 'replace', lease.address, 'lladdr', lease.mac, 'dev', bridge, 'nud', 'permanent']);
}

/** Removes what ensureGuestLink made: the TAP and the address's neighbour entry on the bridge. */
export async function removeGuestLink(lease: Lease, bridge: string): Promise<void> {
  await deleteLink(lease.tap);
  await removeNeighbour(lease.address, bridge);
}

const NeighList = z.array(z.object({ dst: z.string(), state: z.array(z.string()).optional() }).loose());

/** Addresses with a permanent neighbour entry on the bridge (none if the bridge does not exist). */
export async function permanentNeighbours(bridge: string): Promise<string[]> {
  if (!(await linkExists(bridge))) return [];
  const out = await ip(['-j', 'neigh', 'show', 'dev', bridge, 'nud', 'permanent']);
  return NeighList.parse(JSON.parse(out || '[]')).map((n) => n.dst);
}

export async function removeNeighbour(address: string, bridge: string): Promise<void> {
  if ((await permanentNeighbours(bridge)).includes(address)) await ip(['neigh', 'del', address, 'dev', bridge]);
}
