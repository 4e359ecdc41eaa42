import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadPeerCredentials, peerCredAddonPath, type PeerCredentials } from './peerCredentials';

let dir: string;
let socketPath: string;
let server: net.Server;
const read = loadPeerCredentials();
/** What the reader said for each accepted connection, in order. */
const accepted: PeerCredentials[] = [];
const waiters: (() => void)[] = [];

/** Resolves with the credentials of the next connection the server accepts. */
function nextAccepted(): Promise<PeerCredentials> {
  const index = accepted.length + waiters.length;
  return new Promise((resolve) => waiters.push(() => resolve(accepted[index]!)));
}

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'firedeck-peercred-'));
  fs.chmodSync(dir, 0o755);
  socketPath = path.join(dir, 'p.sock');
  server = net.createServer((socket) => {
    accepted.push(read(socket));
    waiters.shift()?.();
    socket.end();
  });
  await new Promise<void>((resolve) => server.listen(socketPath, resolve));
  fs.chmodSync(socketPath, 0o666);
});

afterAll(async () => {
  await new Promise<void>((resolve) => server.close(() => resolve()));
  fs.rmSync(dir, { recursive: true, force: true });
});

/** Connects from a child process (as `uid`/`gid` when given) and resolves with its pid once it has connected. */
function connectFromChild(ids?: { uid: number; gid: number }): Promise<number> {
  const child = spawn(
    process.execPath,
    ['-e', `require('net').connect(${JSON.stringify(socketPath)}).on('connect', function () { this.end(); })`],
    { stdio: 'ignore', ...ids },
  );
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (code) => (code === 0 ? resolve(child.pid!) : reject(new Error(`child exited ${code}`))));
  });
}

describe('peer credentials (SO_PEERCRED addon)', () => {
  it('is built where the sources look for it', () => {
    expect(fs.existsSync(peerCredAddonPath())).toBe(true);
  });

  it("names this process's uid, gid and pid for a connection from this process", async () => {
    const got = nextAccepted();
    const client = net.connect(socketPath);
    try {
      expect(await got).toEqual({ uid: process.getuid!(), gid: process.getgid!(), pid: process.pid });
    } finally {
      client.destroy();
    }
  });

  it('names the connecting process, not the one that listens', async () => {
    const got = nextAccepted();
    const pid = await connectFromChild();
    expect(await got).toEqual({ uid: process.getuid!(), gid: process.getgid!(), pid });
  });

  it.skipIf(process.getuid!() !== 0)('names another uid when another user connects (as root: nobody)', async () => {
    const got = nextAccepted();
    const pid = await connectFromChild({ uid: 65534, gid: 65534 });
    expect(await got).toEqual({ uid: 65534, gid: 65534, pid });
  });

  it('refuses, with the fix, when the addon is missing or is not one', () => {
    expect(() => loadPeerCredentials(path.join(dir, 'absent.node'))).toThrow(
      expect.objectContaining({ kind: 'unavailable', hint: expect.stringContaining('npm run build -w host-daemon') }),
    );
    const notAnAddon = path.join(dir, 'not-an-addon.node');
    fs.writeFileSync(notAnAddon, 'not an ELF file');
    expect(() => loadPeerCredentials(notAnAddon)).toThrow(
      expect.objectContaining({ kind: 'unavailable', message: expect.stringContaining('does not load') }),
    );
  });

  it('throws for a socket that is not connected (no file descriptor)', () => {
    expect(() => read(new net.Socket())).toThrow(/no file descriptor/);
  });
});
