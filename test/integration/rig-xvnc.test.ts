import crypto from 'node:crypto';
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startXvnc, type Xvnc } from '../rig/xvnc';

/** Reads from the socket until `n` bytes arrived. */
function reader(socket: net.Socket): (n: number) => Promise<Buffer> {
  let buf = Buffer.alloc(0);
  let wake: (() => void) | null = null;
  socket.on('data', (d: Buffer) => {
    buf = Buffer.concat([buf, d]);
    wake?.();
  });
  return async (n) => {
    while (buf.length < n) {
      await new Promise<void>((resolve, reject) => {
        wake = resolve;
        socket.once('close', () => reject(new Error(`connection closed with ${buf.length}/${n} bytes`)));
      });
    }
    const out = buf.subarray(0, n);
    buf = buf.subarray(n);
    return out;
  };
}

/** VNC authentication: DES of the challenge with the password, each key byte bit-reversed. */
function vncResponse(password: string, challenge: Buffer): Buffer {
  const key = Buffer.alloc(8);
  Buffer.from(password, 'latin1').copy(key, 0, 0, 8);
  for (let i = 0; i < 8; i++) {
    const b = key[i]!;
    let r = 0;
    for (let bit = 0; bit < 8; bit++) r |= ((b >> bit) & 1) << (7 - bit);
    key[i] = r;
  }
  // Single DES is 3DES with three equal keys; OpenSSL 3 keeps plain des-ecb in its legacy provider only.
  const cipher = crypto.createCipheriv('des-ede3-ecb', Buffer.concat([key, key, key]), null);
  cipher.setAutoPadding(false);
  return Buffer.concat([cipher.update(challenge), cipher.final()]);
}

async function handshake(
  xvnc: Xvnc,
  password: string,
): Promise<{ banner: string; securityResult: number; name?: string }> {
  const socket = net.connect({ host: xvnc.host, port: xvnc.port });
  try {
    const read = reader(socket);
    const banner = (await read(12)).toString('latin1');
    socket.write('RFB 003.008\n');
    const count = (await read(1))[0]!;
    const types = [...(await read(count))];
    expect(types).toContain(2);
    socket.write(Buffer.from([2]));
    const challenge = await read(16);
    socket.write(vncResponse(password, challenge));
    const securityResult = (await read(4)).readUInt32BE(0);
    if (securityResult !== 0) return { banner, securityResult };
    socket.write(Buffer.from([1])); // ClientInit, shared
    const init = await read(24);
    const nameLength = init.readUInt32BE(20);
    const name = (await read(nameLength)).toString('utf8');
    return { banner, securityResult, name };
  } finally {
    socket.destroy();
  }
}

describe('rig: Xvnc', () => {
  let xvnc: Xvnc;

  beforeAll(async () => {
    xvnc = await startXvnc();
  });

  afterAll(async () => {
    await xvnc?.stop();
  });

  it('accepts an RFB handshake on its port', async () => {
    const socket = net.connect({ host: xvnc.host, port: xvnc.port });
    const banner = await reader(socket)(12);
    socket.destroy();
    expect(banner.toString('latin1')).toBe('RFB 003.008\n');
  });

  it('authenticates the generated password and refuses another', async () => {
    const good = await handshake(xvnc, xvnc.password);
    expect(good.securityResult).toBe(0);
    expect(good.name).toMatch(/\S/);
    const bad = await handshake(xvnc, `${xvnc.password.slice(0, 7)}${xvnc.password.endsWith('x') ? 'y' : 'x'}`);
    expect(bad.securityResult).not.toBe(0);
  });

  it('uses a fresh password per start', async () => {
    const other = await startXvnc();
    try {
      expect(other.password).not.toBe(xvnc.password);
      expect(other.port).not.toBe(xvnc.port);
    } finally {
      await other.stop();
    }
  });
});
