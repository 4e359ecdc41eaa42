import { execFileSync } from 'node:child_process';
import { afterAll, describe, expect, it } from 'vitest';
import { isFiredeckError } from '../../../src/shared/errors';
import { parseCidr } from './cidr';
import {
  GuestIsolation,
  isolationRemoval,
  isolationRuleset,
  isolationTable,
  issuerAllow,
  parseGuestAllow,
  runNft,
  type IsolationConfig,
  type LeaseAddresses,
} from './isolation';

const hasNft = ((): boolean => {
  try {
    execFileSync('nft', ['--version'], { stdio: 'ignore' });
    return process.getuid?.() === 0;
  } catch {
    return false;
  }
})();

const config: IsolationConfig = {
  devicePrefix: 'fdiu',
  bridge: 'fdiubr0',
  subnet: parseCidr('10.213.67.0/24'),
  allow: [
    { address: '10.213.67.1', port: 3128, proto: 'tcp' },
    { address: '10.213.67.1', port: 53, proto: 'udp' },
  ],
};
const a: LeaseAddresses = { tap: 'fdiutap0', mac: '02:fd:01:02:03:04', address: '10.213.67.2' };
const b: LeaseAddresses = { tap: 'fdiutap1', mac: '02:fd:0a:0b:0c:0d', address: '10.213.67.3' };

function kindOf(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    return isFiredeckError(err) ? err.kind : String(err);
  }
  return 'no error';
}

/** The tables as the kernel holds them, reduced to what the rules say: set elements and rule texts. */
function listed(prefix: string): { sets: Record<string, unknown[]>; tables: string[] } {
  const out = JSON.parse(execFileSync('nft', ['-j', 'list', 'ruleset'], { encoding: 'utf8' })) as {
    nftables: Record<string, { family: string; name: string; table?: string; elem?: unknown[] }>[];
  };
  const table = isolationTable(prefix);
  const sets: Record<string, unknown[]> = {};
  const tables: string[] = [];
  for (const item of out.nftables) {
    if (item.table && item.table.name === table) tables.push(`${item.table.family} ${item.table.name}`);
    if (item.set && item.set.table === table) sets[`${item.set.family}/${item.set.name}`] = item.set.elem ?? [];
  }
  return { sets, tables };
}

describe('isolationRuleset', () => {
  it('replaces only the daemon’s own two tables, with each lease’s MAC and address bound to its TAP', () => {
    const text = isolationRuleset(config, [b, a]);
    const tableLines = text.split('\n').filter((l) => /^(table|delete|flush)\b/.test(l));
    expect(tableLines).toEqual([
      'table bridge firedeck-fdiu',
      'delete table bridge firedeck-fdiu',
      'table bridge firedeck-fdiu {',
      'table inet firedeck-fdiu',
      'delete table inet firedeck-fdiu',
      'table inet firedeck-fdiu {',
    ]);
    expect(text).not.toMatch(/flush ruleset|\bruleset\b/);
    expect(text).toContain('elements = { "fdiutap0" . 02:fd:01:02:03:04, "fdiutap1" . 02:fd:0a:0b:0c:0d }');
    expect(text).toContain('elements = { "fdiutap0" . 10.213.67.2, "fdiutap1" . 10.213.67.3 }');
    expect(text).toContain('iifname != "fdiutap*" accept');
    expect(text).toContain('ether type != { ip, arp } drop');
    expect(text).toContain('elements = { 10.213.67.1 . 3128 }');
    expect(text).toContain('elements = { 10.213.67.1 . 53 }');
    expect(text).toContain('iifname "fdiubr0" oifname "fdiubr0" drop');
    expect(text).toContain('meta skuid 0 ip saddr 10.213.67.1 ip daddr 10.213.67.0/24 accept');
  });

  it('without leases or allowed ports the sets are empty and everything from the TAPs is still dropped', () => {
    const text = isolationRuleset({ ...config, allow: [] }, []);
    expect(text).not.toContain('elements');
    expect(text).toContain('iifname . ether saddr != @macs drop');
  });

  it('refuses every value that is not what it claims to be', () => {
    const bad: [string, () => unknown][] = [
      ['quote in a TAP name', () => isolationRuleset(config, [{ ...a, tap: 'fdiutap0" accept' }])],
      ['TAP of another prefix', () => isolationRuleset(config, [{ ...a, tap: 'othertap0' }])],
      ['MAC with a rule in it', () => isolationRuleset(config, [{ ...a, mac: '02:fd:01:02:03:04 accept' }])],
      ['multicast MAC', () => isolationRuleset(config, [{ ...a, mac: '01:00:5e:00:00:01' }])],
      ['address out of range', () => isolationRuleset(config, [{ ...a, address: '10.213.67.256' }])],
      ['address with a set in it', () => isolationRuleset(config, [{ ...a, address: '10.0.0.0/8' }])],
      ['bridge name', () => isolationRuleset({ ...config, bridge: 'br0"; drop' }, [])],
      ['prefix', () => isolationRuleset({ ...config, devicePrefix: 'Fd-1' }, [])],
      ['port 0', () => isolationRuleset({ ...config, allow: [{ address: '10.0.0.1', port: 0, proto: 'tcp' }] }, [])],
    ];
    for (const [what, fn] of bad) expect(`${what}: ${kindOf(fn)}`).toBe(`${what}: invalid_params`);
  });

  it.skipIf(!hasNft)('is a script nft -c accepts, with and without leases', async () => {
    await runNft(isolationRuleset(config, [a, b]), { check: true });
    await runNft(isolationRuleset({ ...config, allow: [] }, []), { check: true });
    await runNft(isolationRemoval(config.devicePrefix), { check: true });
  });
});

describe('parseGuestAllow', () => {
  it('reads ip:port and ip:port/proto entries, tcp by default', () => {
    expect(parseGuestAllow(' 10.213.0.1:3128 , 10.213.0.1:53/udp,192.0.2.7:443/tcp')).toEqual([
      { address: '10.213.0.1', port: 3128, proto: 'tcp' },
      { address: '10.213.0.1', port: 53, proto: 'udp' },
      { address: '192.0.2.7', port: 443, proto: 'tcp' },
    ]);
    expect(parseGuestAllow(undefined)).toEqual([]);
    expect(parseGuestAllow('')).toEqual([]);
  });

  it('refuses anything else with a hint', () => {
    for (const v of ['10.0.0.1', '10.0.0.1:0', '10.0.0.1:65536', '10.0.0.300:80', 'host:80', '10.0.0.1:80/icmp', ',']) {
      let err: unknown;
      try {
        parseGuestAllow(v);
      } catch (e) {
        err = e;
      }
      expect(isFiredeckError(err) && err.kind === 'invalid_params' && err.hint !== undefined, v).toBe(true);
    }
  });
});

describe('issuerAllow', () => {
  it('takes the issuer’s address and port (the scheme’s when none is written)', async () => {
    expect(await issuerAllow('http://10.213.67.1:4444/realms/x')).toEqual([
      { address: '10.213.67.1', port: 4444, proto: 'tcp' },
    ]);
    expect(await issuerAllow('https://10.213.67.1')).toEqual([{ address: '10.213.67.1', port: 443, proto: 'tcp' }]);
    expect(await issuerAllow('http://localhost:8080')).toContainEqual({
      address: '127.0.0.1',
      port: 8080,
      proto: 'tcp',
    });
  });
});

describe.skipIf(!hasNft)('GuestIsolation on the kernel’s nftables', () => {
  const leases: LeaseAddresses[] = [];
  const isolation = new GuestIsolation(
    { ...config, selftestIssuer: 'http://10.213.67.1:4444' },
    { leases: () => leases, log: () => undefined },
  );
  afterAll(async () => {
    await isolation.remove();
  });

  it('installs, adds and removes a lease’s elements, changes serialized, and leaves other tables alone', async () => {
    execFileSync('nft', ['-f', '-'], { input: 'table inet fdiu-bystander {\n  set keep { type ipv4_addr; }\n}\n' });
    try {
      await isolation.install();
      expect(listed('fdiu').tables.sort()).toEqual(['bridge firedeck-fdiu', 'inet firedeck-fdiu']);
      expect(listed('fdiu').sets['bridge/macs']).toEqual([]);
      expect(listed('fdiu').sets['inet/allow_tcp']).toEqual([
        { concat: ['10.213.67.1', 3128] },
        { concat: ['10.213.67.1', 4444] },
      ]);

      // Two changes at once (two VMs booting): neither loses the other's rules.
      leases.push(a);
      await Promise.all([isolation.attach(a), isolation.attach(b)]);
      expect(listed('fdiu').sets['bridge/macs']).toEqual([
        { concat: ['fdiutap0', '02:fd:01:02:03:04'] },
        { concat: ['fdiutap1', '02:fd:0a:0b:0c:0d'] },
      ]);

      // b's lease was never stored: the next change drops it, as a detach drops a lease still in the store.
      await isolation.detach(a);
      expect(listed('fdiu').sets['bridge/macs']).toEqual([]);
      expect(listed('fdiu').sets['bridge/addrs']).toEqual([]);

      const bystander = execFileSync('nft', ['list', 'table', 'inet', 'fdiu-bystander'], { encoding: 'utf8' });
      expect(bystander).toContain('set keep');
    } finally {
      execFileSync('nft', ['delete', 'table', 'inet', 'fdiu-bystander']);
    }
  });

  it('remove() deletes both tables and nothing else; a second remove is no error', async () => {
    await isolation.install();
    await isolation.remove();
    await isolation.remove();
    expect(listed('fdiu').tables).toEqual([]);
  });
});
