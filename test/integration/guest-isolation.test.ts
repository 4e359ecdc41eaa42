import { execFile, execFileSync } from 'node:child_process';
import net from 'node:net';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Vm } from '../../src/shared/protocol/vm';
import { isolationRemoval, isolationTable, runNft } from '../../host-daemon/src/net/isolation';
import { bridgeMac } from '../../host-daemon/src/net/links';
import { startDaemon, type DaemonRig } from '../rig/daemon';
import { installTestImage } from '../rig/testImage';
import { consoleAttach, removeLinks } from './daemon-helpers';

const run = promisify(execFile);
const PREFIX = 'fdis';
const BRIDGE = `${PREFIX}br0`;
const CIDR = '10.213.66.0/24';
const GATEWAY = '10.213.66.1';
const TABLE = isolationTable(PREFIX);
const BOOT_S = 300;

/** A TCP listener that greets and hangs up, remembering who connected. */
interface Listener {
  port: number;
  peers: string[];
  server: net.Server;
}

function listen(host: string, port: number, greeting: string): Promise<Listener> {
  return new Promise((resolve, reject) => {
    const peers: string[] = [];
    const server = net.createServer((socket) => {
      peers.push((socket.remoteAddress ?? '').replace(/^::ffff:/, ''));
      socket.end(`${greeting}\n`);
    });
    server.once('error', reject);
    server.listen(port, host, () => resolve({ port: (server.address() as net.AddressInfo).port, peers, server }));
  });
}

/** The guest's root shell on its serial console (the test image runs `ash -l` on ttyS0). */
interface RootShell {
  run(command: string, timeoutMs?: number): Promise<{ out: string; code: number }>;
  close(): void;
}

let nextMark = 7100;

async function rootShell(vm: Vm): Promise<RootShell> {
  const attach = await consoleAttach(path.join(daemon.runDir, 'vms', vm.id, 'console.sock'));
  attach.write('\n');
  return {
    async run(command, timeoutMs = 60_000) {
      const mark = nextMark++;
      // The marks are computed by the shell: the echo of the typed line never matches them.
      attach.write(`echo "<$((${mark}+0))<"; ${command}; echo ">$((${mark}+0))>$?>"\n`);
      const hit = await attach.waitFor(new RegExp(`<${mark}<([\\s\\S]*?)>${mark}>(\\d+)>`), timeoutMs);
      const m = new RegExp(`<${mark}<([\\s\\S]*?)>${mark}>(\\d+)>`).exec(hit)!;
      return { out: m[1]!.replace(/\r/g, ''), code: Number(m[2]) };
    },
    close: () => attach.close(),
  };
}

/** What `nc` from inside a guest gets back from address:port within a few seconds ('' when nothing). */
function probe(address: string, port: number): string {
  return `(sleep 3) | busybox nc -w 3 ${address} ${port} 2>/dev/null | head -c 64; echo`;
}

async function shell(name: string, command: string): Promise<string> {
  const { stdout } = await run(daemon.firedeckdCommand, ['shell', name, '--', command], { timeout: 90_000 });
  return stdout;
}

function sshBanner(address: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = net.connect(22, address);
    s.setTimeout(15_000, () => reject(new Error(`no SSH banner from ${address} within 15 s`)));
    s.once('data', (b: Buffer) => {
      s.destroy();
      resolve(b.toString());
    });
    s.once('error', reject);
  });
}

function neighbourMac(address: string): string | null {
  const out = execFileSync('ip', ['-j', 'neigh', 'show', 'to', address, 'dev', BRIDGE], { encoding: 'utf8' });
  const entries = JSON.parse(out) as { dst: string; lladdr?: string }[];
  return entries.find((e) => e.dst === address)?.lladdr ?? null;
}

function fdbPortsOf(mac: string): string[] {
  const out = execFileSync('bridge', ['-j', 'fdb', 'show', 'br', BRIDGE], { encoding: 'utf8' });
  return (JSON.parse(out) as { mac: string; ifname: string }[]).filter((e) => e.mac === mac).map((e) => e.ifname);
}

/** The TAPs the daemon's bridge table lets MACs and addresses out of, as `tap mac` / `tap address`. */
function tableElements(): { macs: string[]; addrs: string[] } | null {
  let out: string;
  try {
    out = execFileSync('nft', ['-j', 'list', 'table', 'bridge', TABLE], { encoding: 'utf8', stdio: 'pipe' });
  } catch {
    return null;
  }
  const items = (JSON.parse(out) as { nftables: { set?: { name: string; elem?: { concat: string[] }[] } }[] }).nftables;
  const elems = (name: string): string[] =>
    (items.find((i) => i.set?.name === name)?.set?.elem ?? []).map((e) => e.concat.join(' '));
  return { macs: elems('macs'), addrs: elems('addrs') };
}

function isolatedFlag(tap: string): boolean | undefined {
  const out = execFileSync('bridge', ['-d', '-j', 'link', 'show', 'dev', tap], { encoding: 'utf8' });
  return (JSON.parse(out) as { isolated?: boolean }[])[0]?.isolated;
}

let daemon: DaemonRig;
let allowed: Listener;
let denied: Listener;
let hostSsh: Listener | null = null;
let a: Vm;
let b: Vm;

beforeAll(async () => {
  removeLinks(PREFIX);
  await runNft(isolationRemoval(PREFIX));
  // On every address of the host: the bridge's too, once the daemon has made it.
  allowed = await listen('0.0.0.0', 0, 'allowed-ok');
  denied = await listen('0.0.0.0', 0, 'denied-ok');
  daemon = await startDaemon({
    env: {
      FIREDECK_BRIDGE: BRIDGE,
      FIREDECK_CIDR: CIDR,
      FIREDECK_DEVICE_PREFIX: PREFIX,
      FIREDECK_GUEST_ALLOW: `${GATEWAY}:${allowed.port}/tcp`,
    },
  });
  await installTestImage(daemon.stateDir);
  // The host's sshd port on the bridge's address (the rig's host runs no sshd there; this stands in for it).
  hostSsh = await listen(GATEWAY, 22, 'SSH-2.0-host-sshd').catch(() => null);
  const create = (name: string): Promise<Vm> =>
    daemon.call('vm.create', { name, kind: 'cli', owner: 'alice', image: 'test' });
  [a, b] = await Promise.all([create('a'), create('b')]);
  await Promise.all(
    [a, b].map((vm) => daemon.call('vm.waitReady', { id: vm.id, marker: 'sshd', timeoutSeconds: BOOT_S })),
  );
}, 600_000);

afterAll(async () => {
  if (daemon) {
    for (const vm of await daemon.call('vm.list', {}).catch(() => [] as Vm[])) {
      await daemon.call('vm.destroy', { id: vm.id }).catch(() => undefined);
    }
    await daemon.stop();
  }
  removeLinks(PREFIX);
  await runNft(isolationRemoval(PREFIX)).catch(() => undefined);
  for (const l of [allowed, denied, hostSsh]) l?.server.close();
});

describe('guests isolated from each other and from the host (real QEMU guests)', { timeout: 600_000 }, () => {
  it('the daemon still reaches both guests, and each TAP is an isolated port with its lease in the rules', async () => {
    expect((await shell('a', 'hostname')).trim()).toBe('a');
    expect((await shell('b', 'hostname')).trim()).toBe('b');
    expect(await sshBanner(b.address!)).toMatch(/^SSH-2\.0-OpenSSH/);
    expect(isolatedFlag(a.tap!)).toBe(true);
    expect(isolatedFlag(b.tap!)).toBe(true);
    const elements = tableElements();
    expect(elements?.macs.sort()).toEqual([`${a.tap} ${a.mac}`, `${b.tap} ${b.mac}`].sort());
    expect(elements?.addrs.sort()).toEqual([`${a.tap} ${a.address}`, `${b.tap} ${b.address}`].sort());
  });

  it("guest A reaches none of guest B's ports (22, 5900, 8390) and cannot ping it", async () => {
    const bShell = await rootShell(b);
    const aShell = await rootShell(a);
    try {
      // Stand-ins for B's VNC server and agent, so that only the network can be why A gets nothing.
      const listeners = await bShell.run(
        "printf '#!/bin/sh\\necho vnc-of-b\\n' > /tmp/vnc; printf '#!/bin/sh\\necho agent-of-b\\n' > /tmp/agent; " +
          'chmod +x /tmp/vnc /tmp/agent; ' +
          // Detached from the console's terminal, or the shell's job control stops them.
          'setsid busybox nc -ll -p 5900 -e /tmp/vnc </dev/null >/dev/null 2>&1 & ' +
          'setsid busybox nc -ll -p 8390 -e /tmp/agent </dev/null >/dev/null 2>&1 & ' +
          'i=0; while [ "$(busybox netstat -ltn | grep -cE ":(5900|8390) ")" != 2 ] && [ $i -lt 100 ]; do ' +
          'busybox usleep 100000; i=$((i + 1)); done; busybox netstat -ltn | grep -cE ":(5900|8390) "',
      );
      expect(listeners.out.trim().split('\n').pop()).toBe('2');
      // B's own listeners answer B itself: they work.
      expect((await bShell.run(probe('127.0.0.1', 5900))).out).toContain('vnc-of-b');

      // All of it first, then one verdict: a failure shows everything A got.
      const got: Record<string, string> = {};
      for (const port of [22, 5900, 8390]) got[port] = (await shell('a', probe(b.address!, port))).trim();
      const ping = await aShell.run(`busybox ping -c 2 -W 2 ${b.address!}`);
      expect(ping.out).toMatch(/2 packets transmitted/);
      got.ping = ping.code === 0 ? 'answered' : 'no answer';
      expect(got).toEqual({ 22: '', 5900: '', 8390: '', ping: 'no answer' });
    } finally {
      aShell.close();
      bShell.close();
    }
  });

  it("a guest reaches a guest-allow port on the host, never the host's sshd or other ports", async () => {
    expect((await shell('a', probe(GATEWAY, allowed.port))).trim()).toBe('allowed-ok');
    expect(allowed.peers).toContain(a.address);
    expect((await shell('a', probe(GATEWAY, denied.port))).trim()).toBe('');
    expect(denied.peers).not.toContain(a.address);
    // The host's address outside the bridge is the host too.
    const eth0 = execFileSync('ip', ['-j', '-4', 'addr', 'show', 'scope', 'global'], { encoding: 'utf8' });
    const other = (JSON.parse(eth0) as { ifname: string; addr_info: { local: string }[] }[])
      .filter((l) => l.ifname !== BRIDGE)
      .flatMap((l) => l.addr_info.map((i) => i.local))[0];
    if (other !== undefined) expect((await shell('a', probe(other, denied.port))).trim()).toBe('');
    if (hostSsh !== null) {
      expect((await shell('a', probe(GATEWAY, 22))).trim()).toBe('');
      expect(hostSsh.peers).not.toContain(a.address);
    } else {
      // Something else (the host's sshd) holds the bridge address's port 22: still nothing reaches it.
      expect((await shell('a', probe(GATEWAY, 22))).trim()).not.toMatch(/SSH-2\.0/);
    }
  });

  it("guest A cannot take B's address (ARP, IPv4 source) or MAC; the daemon still reaches B", async () => {
    // The host talks to B first: its neighbour entry for B holds B's MAC.
    expect(await sshBanner(b.address!)).toMatch(/^SSH-2\.0-OpenSSH/);
    expect(neighbourMac(b.address!)).toBe(b.mac);
    const aShell = await rootShell(a);
    try {
      const spoof = await aShell.run(
        `ip addr add ${b.address!}/32 dev eth0 && ip route replace ${GATEWAY}/32 dev eth0 src ${b.address!} && ` +
          `echo spoof-set && busybox arping -U -c 3 -I eth0 -s ${b.address!} ${b.address!}; ` +
          `${probe(GATEWAY, allowed.port)}; ` +
          `ip route del ${GATEWAY}/32; ip addr del ${b.address!}/32 dev eth0`,
        60_000,
      );
      // It did all it tried (so only the network stopped it).
      expect(spoof.out).toContain('spoof-set');
      expect(spoof.out).toMatch(/Sent 3 probe/);
      expect({
        answer: spoof.out.includes('allowed-ok'),
        hostSawB: allowed.peers.includes(b.address!),
        hostNeighbourOfB: neighbourMac(b.address!),
      }).toEqual({ answer: false, hostSawB: false, hostNeighbourOfB: b.mac });

      const mac = await aShell.run(
        `ip link set eth0 address ${b.mac!} && echo mac-set && busybox ping -c 2 -W 1 ${GATEWAY}; ` +
          `ip link set eth0 address ${a.mac!}; ip link show eth0 | grep -c ${a.mac!}`,
      );
      expect(mac.out).toContain('mac-set');
      expect(mac.out).toMatch(/2 packets transmitted/);
      expect(mac.out.trim().split('\n').pop()).toBe('1');
      expect(fdbPortsOf(b.mac!)).not.toContain(a.tap);
    } finally {
      aShell.close();
    }
    expect((await shell('b', 'hostname')).trim()).toBe('b');
    expect(await sshBanner(b.address!)).toMatch(/^SSH-2\.0-OpenSSH/);
    expect((await shell('a', 'hostname')).trim()).toBe('a');
  });

  it("a destroyed VM's rules are gone", async () => {
    await daemon.call('vm.destroy', { id: b.id });
    const elements = tableElements();
    expect(elements?.macs).toEqual([`${a.tap} ${a.mac}`]);
    expect(elements?.addrs).toEqual([`${a.tap} ${a.address}`]);
  });

  it('after kill -9 and a restart the rules are back (tables deleted in between, as by a host firewall reload)', async () => {
    // The bridge keeps its own MAC while ports come and go (B's TAP is gone): guests, whom the host never ARPs,
    // still know where the host is.
    expect(JSON.parse(execFileSync('ip', ['-j', 'link', 'show', 'dev', BRIDGE], { encoding: 'utf8' }))[0].address).toBe(
      bridgeMac(BRIDGE),
    );
    await daemon.kill9();
    await runNft(isolationRemoval(PREFIX));
    expect(tableElements()).toBeNull();
    await daemon.restart();
    await daemon.call('vm.list', {});
    const elements = tableElements();
    expect(elements?.macs).toEqual([`${a.tap} ${a.mac}`]);
    expect(elements?.addrs).toEqual([`${a.tap} ${a.address}`]);
    expect((await shell('a', 'hostname')).trim()).toBe('a');
    expect((await shell('a', probe(GATEWAY, denied.port))).trim()).toBe('');
    expect((await shell('a', probe(GATEWAY, allowed.port))).trim()).toBe('allowed-ok');
  });
});
