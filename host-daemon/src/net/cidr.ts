import { FiredeckError } from '../../../src/shared/errors';

/** An IPv4 subnet: the bridge takes the first usable address, guests get the rest. */
export interface Subnet {
  network: number;
  prefix: number;
  gateway: string;
  netmask: string;
  /** How many guest addresses the subnet offers (excluding network, gateway, broadcast). */
  guestCapacity: number;
}

export function ipToInt(ip: string): number {
  const parts = ip.split('.');
  if (parts.length !== 4) throw new FiredeckError('invalid_params', `Not an IPv4 address: ${ip}`);
  let n = 0;
  for (const p of parts) {
    if (!/^\d{1,3}$/.test(p) || Number(p) > 255)
      throw new FiredeckError('invalid_params', `Not an IPv4 address: ${ip}`);
    n = n * 256 + Number(p);
  }
  return n;
}

export function intToIp(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
}

export function parseCidr(cidr: string): Subnet {
  const m = /^(\d{1,3}(?:\.\d{1,3}){3})\/(\d{1,2})$/.exec(cidr);
  if (!m) throw new FiredeckError('invalid_params', `Not an IPv4 CIDR: ${cidr}`, { hint: 'e.g. 10.213.0.0/24' });
  const prefix = Number(m[2]);
  if (prefix < 8 || prefix > 29) {
    throw new FiredeckError('invalid_params', `CIDR prefix must be between /8 and /29 (got /${prefix})`);
  }
  const mask = prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
  const network = (ipToInt(m[1]!) & mask) >>> 0;
  return {
    network,
    prefix,
    gateway: intToIp(network + 1),
    netmask: intToIp(mask),
    guestCapacity: 2 ** (32 - prefix) - 3,
  };
}

/** The guest address at `offset` (0 = first after the gateway). */
export function guestAddress(subnet: Subnet, offset: number): string {
  if (offset < 0 || offset >= subnet.guestCapacity) throw new RangeError(`offset ${offset} outside the subnet`);
  return intToIp(subnet.network + 2 + offset);
}

/** Whether `address` (any string; an IPv6 or malformed one is not held) lies inside the subnet. */
export function subnetHolds(subnet: Subnet, address: string): boolean {
  if (!/^\d{1,3}(?:\.\d{1,3}){3}$/.test(address)) return false;
  const mask = (0xffffffff << (32 - subnet.prefix)) >>> 0;
  return (ipToInt(address) & mask) >>> 0 === subnet.network;
}
