import { execFile, execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Des } from '../../host-daemon/src/vnc/des';
import { runRfbProxy } from '../../host-daemon/src/vnc/rfbProxy';
import { FiredeckError } from '../../src/shared/errors';
import type { Vm } from '../../src/shared/protocol/vm';
import { startDaemon, type DaemonRig } from '../rig/daemon';
import { installTestImage } from '../rig/testImage';
import { requireTool } from '../rig/tmp';
import { startXvnc, type Xvnc } from '../rig/xvnc';
import { removeLinks } from './daemon-helpers';

/** Reads exact byte counts from a socket, as a VNC viewer would during its handshake. */
class RfbPeer {
  private buffer = Buffer.alloc(0);
  private waiters: (() => void)[] = [];
  private ended = false;

  constructor(readonly socket: net.Socket) {
    socket.on('data', (chunk: Buffer) => {
      this.buffer = Buffer.concat([this.buffer, chunk]);
      this.waiters.splice(0).forEach((w) => w());
    });
    socket.on('close', () => {
      this.ended = true;
      this.waiters.splice(0).forEach((w) => w());
    });
    socket.on('error', () => undefined);
  }

  static connect(port: number): Promise<RfbPeer> {
    return new Promise((resolve, reject) => {
      const s = net.connect({ host: '127.0.0.1', port });
      s.once('connect', () => resolve(new RfbPeer(s)));
      s.once('error', reject);
    });
  }

  async read(count: number): Promise<Buffer> {
    while (this.buffer.length < count) {
      if (this.ended) throw new Error(`connection closed with ${this.buffer.length} of ${count} bytes`);
      await new Promise<void>((resolve) => this.waiters.push(resolve));
    }
    const out = this.buffer.subarray(0, count);
    this.buffer = this.buffer.subarray(count);
    return out;
  }

  /** Resolves with what was left unread once the other side closes. */
  async closed(): Promise<Buffer> {
    while (!this.ended) await new Promise<void>((resolve) => this.waiters.push(resolve));
    return this.buffer;
  }

  write(data: string | Uint8Array): void {
    this.socket.write(data);
  }
}

/** A loopback listener that runs the proxy for each connection against the rig's Xvnc. */
async function startProxy(
  xvnc: Xvnc,
  password: string,
): Promise<{ port: number; sessions: Promise<void>[]; close(): Promise<void> }> {
  const sessions: Promise<void>[] = [];
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    sockets.add(client);
    client.on('close', () => sockets.delete(client));
    const guest = net.connect({ host: xvnc.host, port: xvnc.port });
    const session = runRfbProxy({ client: { input: client, output: client }, guest, password }).finally(() =>
      client.end(),
    );
    session.catch(() => undefined);
    sessions.push(session);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    sessions,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

const GEOMETRY = { width: 832, height: 624 };

describe('VncAuth DES against the real TigerVNC tools', () => {
  it("matches `vncpasswd -f`, which stores the password DES-encrypted under VNC's fixed key e84ad660c4721ae0", () => {
    const vncpasswd = requireTool('/usr/bin/vncpasswd', 'tigervnc-tools');
    const des = new Des(Buffer.from('e84ad660c4721ae0', 'hex'));
    for (const length of [1, 5, 8]) {
      const password = crypto.randomBytes(8).toString('base64url').slice(0, length);
      const stored = execFileSync(vncpasswd, ['-f'], { input: `${password}\n` });
      const padded = Buffer.alloc(8);
      padded.write(password, 'latin1');
      expect(Buffer.from(des.encryptBlock(padded)).toString('hex')).toBe(stored.toString('hex'));
    }
  });
});

describe('the RFB proxy against a real Xvnc', () => {
  let xvnc: Xvnc;

  beforeAll(async () => {
    xvnc = await startXvnc({ geometry: `${GEOMETRY.width}x${GEOMETRY.height}` });
  });

  afterAll(async () => {
    await xvnc?.stop();
  });

  it('Xvnc itself demands VncAuth (so the proxy, not the server, is what lets the viewer in)', async () => {
    const direct = await RfbPeer.connect(xvnc.port);
    expect((await direct.read(12)).toString()).toBe('RFB 003.008\n');
    direct.write('RFB 003.008\n');
    const count = (await direct.read(1))[0]!;
    expect([...(await direct.read(count))]).toEqual([2]);
    direct.socket.destroy();
  });

  it('offers the viewer RFB 003.008 with only security None, then SecurityResult OK and the real ServerInit', async () => {
    const proxy = await startProxy(xvnc, xvnc.password);
    try {
      const viewer = await RfbPeer.connect(proxy.port);
      expect((await viewer.read(12)).toString()).toBe('RFB 003.008\n');
      viewer.write('RFB 003.008\n');
      const count = (await viewer.read(1))[0]!;
      expect([...(await viewer.read(count))]).toEqual([1]);
      viewer.write(Buffer.from([1]));
      expect((await viewer.read(4)).readUInt32BE(0)).toBe(0);
      viewer.write(Buffer.from([1])); // ClientInit, shared
      const init = await viewer.read(24);
      expect({ width: init.readUInt16BE(0), height: init.readUInt16BE(2) }).toEqual(GEOMETRY);
      expect(init[4]).toBe(32); // bits per pixel of Xvnc's -depth 24 framebuffer
      const name = (await viewer.read(init.readUInt32BE(20))).toString();
      // TigerVNC names the desktop user@host when it is given no -desktop.
      expect(name).toBe(`${os.userInfo().username}@${os.hostname()}`);

      // Past the handshake the bytes are Xvnc's own: a full update request gets a raw rectangle back.
      const request = Buffer.alloc(10);
      request.writeUInt8(3, 0);
      request.writeUInt8(0, 1);
      request.writeUInt16BE(0, 2);
      request.writeUInt16BE(0, 4);
      request.writeUInt16BE(16, 6);
      request.writeUInt16BE(8, 8);
      viewer.write(request);
      const update = await viewer.read(4);
      expect(update[0]).toBe(0);
      expect(update.readUInt16BE(2)).toBeGreaterThanOrEqual(1);
      const rect = await viewer.read(12);
      expect(rect.readInt32BE(8)).toBe(0); // raw encoding
      const pixels = await viewer.read(rect.readUInt16BE(4) * rect.readUInt16BE(6) * 4);
      expect(pixels.length).toBeGreaterThan(0);

      viewer.socket.end();
      await expect(proxy.sessions[0]).resolves.toBeUndefined();
    } finally {
      await proxy.close();
    }
  });

  it('serves an RFB 3.3 viewer too (security type chosen by the server, no SecurityResult)', async () => {
    const proxy = await startProxy(xvnc, xvnc.password);
    try {
      const viewer = await RfbPeer.connect(proxy.port);
      await viewer.read(12);
      viewer.write('RFB 003.003\n');
      expect((await viewer.read(4)).readUInt32BE(0)).toBe(1);
      viewer.write(Buffer.from([0]));
      const init = await viewer.read(24);
      expect(init.readUInt16BE(0)).toBe(GEOMETRY.width);
      viewer.socket.destroy();
    } finally {
      await proxy.close();
    }
  });

  it('refuses a viewer that insists on another security type', async () => {
    const proxy = await startProxy(xvnc, xvnc.password);
    try {
      const viewer = await RfbPeer.connect(proxy.port);
      await viewer.read(12);
      viewer.write('RFB 003.008\n');
      await viewer.read(2);
      viewer.write(Buffer.from([2]));
      expect((await viewer.read(4)).readUInt32BE(0)).toBe(1);
      const reason = await viewer.read((await viewer.read(4)).readUInt32BE(0));
      expect(reason.toString()).toMatch(/only security type None/);
      await expect(proxy.sessions[0]).rejects.toMatchObject({ kind: 'invalid_request' });
    } finally {
      await proxy.close();
    }
  });

  it('a wrong password is a clear auth_failed error, told to the viewer in RFB terms, without any password', async () => {
    const wrong = crypto.randomBytes(6).toString('base64url');
    const proxy = await startProxy(xvnc, wrong);
    try {
      const viewer = await RfbPeer.connect(proxy.port);
      expect((await viewer.read(12)).toString()).toBe('RFB 003.008\n');
      viewer.write('RFB 003.008\n');
      expect((await viewer.read(1))[0]).toBe(0); // no security types: a refusal with a reason
      const reason = (await viewer.read((await viewer.read(4)).readUInt32BE(0))).toString();
      expect(reason).toMatch(/refused the VM's VNC password/);
      const err = await proxy.sessions[0]!.then(
        () => null,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(FiredeckError);
      expect(err).toMatchObject({ kind: 'auth_failed' });
      const text = `${reason} ${(err as FiredeckError).message} ${(err as FiredeckError).hint ?? ''}`;
      expect(text).not.toContain(wrong);
      expect(text).not.toContain(xvnc.password);
    } finally {
      await proxy.close();
    }
  });
});

describe('`firedeckd vnc` refuses what has no desktop, with typed errors on stderr', () => {
  const PREFIX = 'fdt5v';
  let daemon: DaemonRig;
  let browserVm: Vm;

  const vnc = (ref: string): Promise<{ code: number; stdout: string; stderr: string }> =>
    new Promise((resolve) => {
      const child = execFile(daemon.firedeckdCommand, ['vnc', ref], { timeout: 60_000 }, (err, stdout, stderr) =>
        resolve({ code: err ? ((err as { code?: number }).code ?? -1) : 0, stdout, stderr }),
      );
      child.stdin?.end();
    });

  beforeAll(async () => {
    removeLinks(PREFIX);
    daemon = await startDaemon({
      env: { FIREDECK_BRIDGE: `${PREFIX}br0`, FIREDECK_CIDR: '10.213.57.0/24', FIREDECK_DEVICE_PREFIX: PREFIX },
    });
    await installTestImage(daemon.stateDir);
    await daemon.call('vm.create', { name: 'vnc-cli', kind: 'cli', owner: 'ops', image: 'test', start: false });
    browserVm = await daemon.call('vm.create', {
      name: 'vnc-browser',
      kind: 'browser',
      owner: 'ops',
      image: 'test',
      start: false,
    });
  });

  afterAll(async () => {
    if (daemon) {
      for (const vm of await daemon.call('vm.list', {}).catch(() => [] as Vm[])) {
        await daemon.call('vm.destroy', { id: vm.id }).catch(() => undefined);
      }
      await daemon.stop();
    }
    removeLinks(PREFIX);
  });

  it('an unknown VM', async () => {
    const r = await vnc('no-such-vm');
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/^firedeckd vnc: No VM named no-such-vm \(not_found\)/);
  });

  it('a CLI VM', async () => {
    const r = await vnc('vnc-cli');
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(
      /^firedeckd vnc: VM vnc-cli is a cli VM; only browser VMs have a desktop \(invalid_params\)/,
    );
  });

  it('a browser VM that is not running, without printing its password', async () => {
    const r = await vnc(browserVm.id);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(
      /^firedeckd vnc: VM vnc-browser is stopped; its desktop needs it running \(invalid_state\)/,
    );
    const secrets = JSON.parse(fs.readFileSync(`${daemon.stateDir}/vms/${browserVm.id}/secrets.json`, 'utf8')) as {
      vncPassword: string;
    };
    expect(secrets.vncPassword.length).toBeGreaterThanOrEqual(8);
    expect(r.stderr).not.toContain(secrets.vncPassword);
  });

  it('usage without a VM', async () => {
    const r = await new Promise<{ code: number; stderr: string }>((resolve) =>
      execFile(daemon.firedeckdCommand, ['vnc'], (err, _stdout, stderr) =>
        resolve({ code: err ? ((err as { code?: number }).code ?? -1) : 0, stderr }),
      ),
    );
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^usage: firedeckd vnc <vm>/);
  });
});
