import { execFile } from 'node:child_process';
import dns from 'node:dns';
import { FiredeckError } from '../../../src/shared/errors';
import { intToIp, ipToInt, type Subnet } from './cidr';
import type { Lease } from './leases';

/** One host port guests may open (the daemon's `guest-allow` setting, the selftest issuer). */
export interface GuestAllow {
  address: string;
  port: number;
  proto: 'tcp' | 'udp';
}

export interface IsolationConfig {
  /** The daemon's device prefix: it names the tables and the TAPs (`<prefix>tap<n>`) the rules cover. */
  devicePrefix: string;
  bridge: string;
  subnet: Subnet;
  /** Host ports guests may open, besides replies to the host's own connections. */
  allow: readonly GuestAllow[];
}

/** What the rules need of a lease: the TAP, and the only MAC and IPv4 address that may leave it. */
export type LeaseAddresses = Pick<Lease, 'tap' | 'mac' | 'address'>;

const PREFIX_RE = /^[a-z][a-z0-9]{0,6}$/;
const IFNAME_RE = /^[A-Za-z0-9_.-]{1,15}$/;
const MAC_RE = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/;

function invalid(what: string, value: unknown): FiredeckError {
  return new FiredeckError('invalid_params', `Refusing to put ${what} ${JSON.stringify(value)} into a firewall rule`, {
    hint: 'Values in the guest isolation rules come from the daemon config and the lease store; check both.',
  });
}

function checkPrefix(prefix: string): string {
  if (!PREFIX_RE.test(prefix)) throw invalid('the device prefix', prefix);
  return prefix;
}

function checkIfname(name: string): string {
  if (!IFNAME_RE.test(name)) throw invalid('the interface name', name);
  return name;
}

function checkMac(mac: string): string {
  if (!MAC_RE.test(mac)) throw invalid('the MAC address', mac);
  // Unicast only: a multicast source is never a VM's.
  if ((parseInt(mac.slice(0, 2), 16) & 1) === 1) throw invalid('the multicast MAC address', mac);
  return mac;
}

function checkIpv4(address: string): string {
  let n: number;
  try {
    n = ipToInt(address);
  } catch {
    throw invalid('the IPv4 address', address);
  }
  // Written back canonically: no leading zeros reach nft.
  return intToIp(n);
}

function checkPort(port: number): number {
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw invalid('the port', port);
  return port;
}

/** The daemon's own nftables table (the same name in the `bridge` and `inet` families): `firedeck-<prefix>`. */
export function isolationTable(devicePrefix: string): string {
  return `firedeck-${checkPrefix(devicePrefix)}`;
}

/**
 * The whole isolation ruleset of one daemon as an `nft -f` script. It replaces the daemon's two tables in one
 * transaction (`table …` makes it exist, `delete table …` empties it, then the new one), and touches no other
 * table. With `leases` empty the tables still exist and still drop everything from the daemon's TAPs.
 *
 * - `bridge firedeck-<prefix>` (prerouting, before the bridge learns a source MAC): a frame from one of the
 *   daemon's TAPs passes only with that TAP's leased MAC as Ethernet source, only as IPv4 or ARP, and only with
 *   the leased IPv4 address as source (ARP: sender MAC and address). A TAP of the prefix without a lease is
 *   dropped whole. Guest-to-guest frames never cross the bridge anyway (each TAP is an isolated port).
 * - `inet firedeck-<prefix>`: from the bridge into the host only replies to the host's own connections and the
 *   `allow` list; nothing routed from the bridge back onto it (guest to guest through the host's forwarding);
 *   nothing new routed onto the bridge from elsewhere; and out of the host onto the bridge, new connections only
 *   from root's sockets with the bridge's own address as source (the daemon runs as root).
 */
export function isolationRuleset(config: IsolationConfig, leases: readonly LeaseAddresses[]): string {
  const table = isolationTable(config.devicePrefix);
  const bridge = checkIfname(config.bridge);
  const gateway = checkIpv4(config.subnet.gateway);
  const network = `${intToIp(config.subnet.network)}/${config.subnet.prefix}`;
  const tapGlob = `${config.devicePrefix}tap*`;
  const macs: string[] = [];
  const addrs: string[] = [];
  for (const lease of [...leases].sort((a, b) => a.tap.localeCompare(b.tap))) {
    const tap = checkIfname(lease.tap);
    if (!tap.startsWith(`${config.devicePrefix}tap`)) throw invalid('the TAP name (not of this daemon)', lease.tap);
    macs.push(`"${tap}" . ${checkMac(lease.mac)}`);
    addrs.push(`"${tap}" . ${checkIpv4(lease.address)}`);
  }
  const allowed = (proto: 'tcp' | 'udp'): string[] => [
    ...new Set(
      config.allow.filter((a) => a.proto === proto).map((a) => `${checkIpv4(a.address)} . ${checkPort(a.port)}`),
    ),
  ];
  const elements = (items: string[]): string[] =>
    items.length === 0 ? [] : [`    elements = { ${items.join(', ')} }`];
  const lines = [
    `table bridge ${table}`,
    `delete table bridge ${table}`,
    `table bridge ${table} {`,
    '  set macs {',
    '    type ifname . ether_addr',
    ...elements(macs),
    '  }',
    '  set addrs {',
    '    type ifname . ipv4_addr',
    ...elements(addrs),
    '  }',
    '  chain guest_frames {',
    '    type filter hook prerouting priority filter; policy accept;',
    `    iifname != "${tapGlob}" accept`,
    '    iifname . ether saddr != @macs drop',
    '    ether type != { ip, arp } drop',
    '    ether type arp iifname . arp saddr ether != @macs drop',
    '    ether type arp iifname . arp saddr ip != @addrs drop',
    '    ether type ip iifname . ip saddr != @addrs drop',
    '  }',
    '}',
    `table inet ${table}`,
    `delete table inet ${table}`,
    `table inet ${table} {`,
    '  set allow_tcp {',
    '    type ipv4_addr . inet_service',
    ...elements(allowed('tcp')),
    '  }',
    '  set allow_udp {',
    '    type ipv4_addr . inet_service',
    ...elements(allowed('udp')),
    '  }',
    '  chain guest_to_host {',
    '    type filter hook input priority filter; policy accept;',
    `    iifname != "${bridge}" accept`,
    '    ct state established,related accept',
    '    ip daddr . tcp dport @allow_tcp accept',
    '    ip daddr . udp dport @allow_udp accept',
    '    drop',
    '  }',
    '  chain routed {',
    '    type filter hook forward priority filter; policy accept;',
    `    iifname "${bridge}" oifname "${bridge}" drop`,
    `    oifname "${bridge}" ct state established,related accept`,
    `    oifname "${bridge}" drop`,
    '  }',
    '  chain host_to_guest {',
    '    type filter hook output priority filter; policy accept;',
    `    oifname != "${bridge}" accept`,
    '    ct state established,related accept',
    `    meta skuid 0 ip saddr ${gateway} ip daddr ${network} accept`,
    '    drop',
    '  }',
    '}',
  ];
  return `${lines.join('\n')}\n`;
}

/** Deletes the daemon's two tables (nothing else); a table that does not exist is no error. */
export function isolationRemoval(devicePrefix: string): string {
  const table = isolationTable(devicePrefix);
  return [
    `table bridge ${table}`,
    `delete table bridge ${table}`,
    `table inet ${table}`,
    `delete table inet ${table}`,
    '',
  ].join('\n');
}

/** Runs an `nft -f -` script (one atomic transaction); `check` only parses and validates it (`nft -c`). */
export function runNft(script: string, opts: { check?: boolean } = {}): Promise<void> {
  return new Promise((resolve, reject) => {
    const args = opts.check ? ['-c', '-f', '-'] : ['-f', '-'];
    const child = execFile('nft', args, { timeout: 15_000 }, (err, _stdout, stderr) => {
      if (!err) {
        resolve();
        return;
      }
      const missing = (err as NodeJS.ErrnoException).code === 'ENOENT';
      reject(
        new FiredeckError(
          missing ? 'unavailable' : 'internal',
          missing ? 'nft is not installed' : `nft -f failed: ${stderr.trim() || err.message}`,
          {
            hint: missing
              ? 'firedeckd confines its guests with nftables: install the nftables package.'
              : 'firedeckd needs root (CAP_NET_ADMIN) and a kernel with nf_tables (bridge and inet families).',
          },
        ),
      );
    });
    child.stdin?.end(script);
  });
}

/** `ip:port` or `ip:port/tcp|udp`, comma-separated (the `guest-allow` setting); tcp when no protocol is given. */
export function parseGuestAllow(value: string | undefined): GuestAllow[] {
  if (value === undefined || value.trim() === '') return [];
  return value.split(',').map((raw) => {
    const m = /^\s*(\d{1,3}(?:\.\d{1,3}){3}):(\d{1,5})(?:\/(tcp|udp))?\s*$/.exec(raw);
    const port = Number(m?.[2]);
    let address: string | null = null;
    try {
      if (m) address = intToIp(ipToInt(m[1]!));
    } catch {
      address = null;
    }
    if (!m || address === null || port < 1 || port > 65535) {
      throw new FiredeckError(
        'invalid_params',
        `guest-allow entry ${JSON.stringify(raw.trim())} is not ip:port[/tcp|udp]`,
        {
          hint: 'e.g. FIREDECK_GUEST_ALLOW=10.213.0.1:3128,10.213.0.1:53/udp (IPv4 addresses, ports 1-65535)',
        },
      );
    }
    return { address, port, proto: m[3] === 'udp' ? 'udp' : 'tcp' };
  });
}

/**
 * The host port of an issuer URL that browser VMs open (the selftest OpenID provider): its IPv4 address (a
 * host name is resolved) and port (80/443 by scheme when none is written).
 */
export async function issuerAllow(issuer: string): Promise<GuestAllow[]> {
  const url = new URL(issuer);
  const port = url.port !== '' ? Number(url.port) : url.protocol === 'https:' ? 443 : 80;
  const host = url.hostname;
  const addresses = /^\d{1,3}(\.\d{1,3}){3}$/.test(host)
    ? [host]
    : (await dns.promises.lookup(host, { all: true, family: 4 })).map((a) => a.address);
  return addresses.map((address) => ({ address: checkIpv4(address), port: checkPort(port), proto: 'tcp' }));
}

/** What the VM lifecycle calls when a VM's TAP gets a guest, and when its lease goes. */
export interface TapIsolation {
  attach(lease: LeaseAddresses): Promise<void>;
  detach(lease: Pick<Lease, 'tap'>): Promise<void>;
  /** The whole ruleset from the lease store, e.g. on daemon start. */
  install(): Promise<void>;
}

/**
 * The daemon's guest isolation: every change rewrites its two tables from the lease store in one `nft -f`
 * transaction, serialized, so concurrent VM operations never lose each other's rules and a stale rule of a VM
 * whose lease went (e.g. with a daemon killed in between) goes with the next change.
 */
export class GuestIsolation implements TapIsolation {
  private queue: Promise<unknown> = Promise.resolve();
  private extraAllow: Promise<GuestAllow[]> | null = null;

  constructor(
    private readonly config: IsolationConfig & { selftestIssuer?: string },
    private readonly deps: {
      leases: () => readonly LeaseAddresses[];
      log: (line: string) => void;
      nft?: (script: string) => Promise<void>;
    },
  ) {
    isolationTable(config.devicePrefix);
  }

  attach(lease: LeaseAddresses): Promise<void> {
    return this.sync((leases) => [...leases.filter((l) => l.tap !== lease.tap), lease]);
  }

  detach(lease: Pick<Lease, 'tap'>): Promise<void> {
    return this.sync((leases) => leases.filter((l) => l.tap !== lease.tap));
  }

  install(): Promise<void> {
    return this.sync((leases) => leases);
  }

  /** Deletes the daemon's tables (tests, uninstall); running guests are then no longer confined. */
  remove(): Promise<void> {
    const next = this.queue.then(() => (this.deps.nft ?? runNft)(isolationRemoval(this.config.devicePrefix)));
    this.queue = next.catch(() => undefined);
    return next;
  }

  private sync(pick: (leases: readonly LeaseAddresses[]) => readonly LeaseAddresses[]): Promise<void> {
    const next = this.queue.then(async () => {
      const allow = [...this.config.allow, ...(await this.selftestAllow())];
      const script = isolationRuleset({ ...this.config, allow }, pick(this.deps.leases()));
      await (this.deps.nft ?? runNft)(script);
    });
    this.queue = next.catch(() => undefined);
    return next;
  }

  private selftestAllow(): Promise<GuestAllow[]> {
    const issuer = this.config.selftestIssuer;
    if (issuer === undefined) return Promise.resolve([]);
    this.extraAllow ??= issuerAllow(issuer).catch((err: unknown) => {
      this.extraAllow = null;
      this.deps.log(`guest isolation: the selftest issuer ${issuer} did not resolve (${String(err)}); not allowed`);
      return [];
    });
    return this.extraAllow;
  }
}
