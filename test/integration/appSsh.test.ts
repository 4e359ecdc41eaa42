import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { HostStatus } from '../../src/shared/app/contract';
import { FiredeckError } from '../../src/shared/errors';
import { AppService } from '../../src/main/app/appService';
import { HostConnection } from '../../src/main/hosts/hostConnection';
import { HostRegistry } from '../../src/main/hosts/hostRegistry';
import { openLocalStore } from '../../src/main/hosts/localStore';
import { DaemonClient } from '../../src/main/rpc/daemonClient';
import { fingerprintOf } from '../../src/main/ssh/hostKey';
import { SshConnectError, SshTransport, type SshTarget } from '../../src/main/ssh/sshTransport';
import type { ExecChannel } from '../../src/main/ssh/transport';
import { startDaemon, type DaemonRig } from '../rig/daemon';
import { startSshd, type Sshd } from '../rig/sshd';
import { makeTempDir, waitForOutput } from '../rig/tmp';

let daemon: DaemonRig;
let sshd: Sshd;
let pinned: { key: string; fingerprint: string };
let target: SshTarget;
const open: SshTransport[] = [];

beforeAll(async () => {
  daemon = await startDaemon();
  sshd = await startSshd({ pathPrepend: [daemon.binDir] });
  const blob = Buffer.from(sshd.hostPublicKey.split(' ')[1]!, 'base64');
  pinned = { key: blob.toString('base64'), fingerprint: fingerprintOf(blob) };
  target = {
    address: sshd.host,
    port: sshd.port,
    user: sshd.user,
    auth: { type: 'keyFile', path: sshd.clientKeyPath },
    pinned,
    keepaliveIntervalMs: 1000,
    keepaliveCountMax: 2,
  };
});

afterAll(async () => {
  for (const t of open) t.close();
  await sshd?.stop();
  await daemon?.stop();
});

async function connect(overrides: Partial<SshTarget> = {}): Promise<SshTransport> {
  const t = await SshTransport.connect({ ...target, ...overrides });
  open.push(t);
  return t;
}

function collect(channel: ExecChannel, pattern: RegExp): Promise<string> {
  return new Promise((resolve, reject) => {
    let out = '';
    const onData = (c: Buffer): void => {
      out += c.toString();
      const m = pattern.exec(out);
      if (m) {
        channel.stream.off('data', onData);
        resolve(m[0]);
      }
    };
    channel.stream.on('data', onData);
    void channel.exited.then(() => reject(new Error(`channel ended before ${pattern}; got ${JSON.stringify(out)}`)));
  });
}

describe('SSH transport against the rig sshd', () => {
  it('refuses an unknown host key and reports the fingerprint OpenSSH shows', async () => {
    const err = await connect({ pinned: null }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SshConnectError);
    expect((err as SshConnectError).kind).toBe('host_key_unknown');
    expect((err as SshConnectError).details?.fingerprint).toBe(sshd.hostKeyFingerprint);
    expect((err as SshConnectError).refusedKey?.verdict).toBe('unknown');
  });

  it('refuses a changed host key before authenticating', async () => {
    const dir = makeTempDir('otherkey');
    try {
      execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', path.join(dir, 'k')]);
      const blob = Buffer.from(fs.readFileSync(path.join(dir, 'k.pub'), 'utf8').split(' ')[1]!, 'base64');
      const log = path.join(sshd.dir, 'sshd.log');
      const before = (fs.readFileSync(log, 'utf8').match(/Accepted publickey/g) ?? []).length;
      const err = await connect({ pinned: { key: blob.toString('base64'), fingerprint: fingerprintOf(blob) } }).catch(
        (e: unknown) => e,
      );
      expect((err as SshConnectError).kind).toBe('host_key_mismatch');
      expect((err as SshConnectError).message).toMatch(/^host key changed: /);
      expect((fs.readFileSync(log, 'utf8').match(/Accepted publickey/g) ?? []).length).toBe(before);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('reports a key the host does not accept, and an unreadable key file', async () => {
    const dir = makeTempDir('wrongkey');
    try {
      execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', path.join(dir, 'k')]);
      await expect(connect({ auth: { type: 'keyFile', path: path.join(dir, 'k') } })).rejects.toMatchObject({
        kind: 'auth_failed',
      });
      await expect(connect({ auth: { type: 'keyFile', path: path.join(dir, 'missing') } })).rejects.toMatchObject({
        kind: 'auth_failed',
      });
      await expect(connect({ auth: { type: 'agent' }, agentSocket: '' })).rejects.toMatchObject({
        kind: 'auth_failed',
      });
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('explains a passphrase-protected key file and a public key given as the private one', async () => {
    const dir = makeTempDir('lockedkey');
    try {
      execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', 'a passphrase', '-f', path.join(dir, 'k')]);
      const locked = await connect({ auth: { type: 'keyFile', path: path.join(dir, 'k') } }).catch((e: unknown) => e);
      expect(locked).toMatchObject({
        kind: 'auth_failed',
        message: expect.stringMatching(/protected by a passphrase/),
      });
      expect((locked as SshConnectError).hint).toContain('ssh-add');
      const pub = await connect({ auth: { type: 'keyFile', path: path.join(dir, 'k.pub') } }).catch((e: unknown) => e);
      expect(pub).toMatchObject({ kind: 'auth_failed', message: expect.stringMatching(/not a usable private key/) });
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('fails a connect to a port that accepts but never speaks SSH once, with a timeout, and nothing crashes', async () => {
    // ssh2 reports two errors for this (the handshake timeout, then the lost socket); the second one used
    // to reach no listener and throw out of the process.
    const uncaught: unknown[] = [];
    const onUncaught = (err: unknown): void => {
      uncaught.push(err);
    };
    process.on('uncaughtException', onUncaught);
    const accepted: net.Socket[] = [];
    const silent = net.createServer((socket) => {
      accepted.push(socket);
      socket.resume(); // reads (and drops) whatever comes, so that the client's end is seen
    });
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    try {
      const port = (silent.address() as net.AddressInfo).port;
      const err = await connect({ port, readyTimeoutMs: 500 }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(FiredeckError);
      expect((err as FiredeckError).kind).toBe('connection_failed');
      expect((err as FiredeckError).message).toMatch(/Timed out while waiting for handshake/);
      // The client's socket is gone once the server sees it end; give its close a turn to report.
      await new Promise<void>((resolve) => {
        const socket = accepted[0]!;
        if (socket.destroyed || socket.readableEnded) resolve();
        else socket.once('close', () => resolve());
      });
      await new Promise((resolve) => setImmediate(resolve));
      expect(uncaught).toEqual([]);
    } finally {
      process.off('uncaughtException', onUncaught);
      for (const socket of accepted) socket.destroy();
      await new Promise((resolve) => silent.close(resolve));
    }
  });

  it('reads a key file given as ~/… from the home directory', async () => {
    const fromHome = `~/${path.relative(os.homedir(), sshd.clientKeyPath)}`;
    const t = await connect({ auth: { type: 'keyFile', path: fromHome } });
    const ch = await t.exec('echo home-key-ok');
    expect(await collect(ch, /home-key-ok/)).toBe('home-key-ok');
  });

  it('does not trust a key shown before the host was moved to another address', async () => {
    const dir = makeTempDir('app-trust');
    const db = openLocalStore(dir);
    const service = new AppService({ mode: 'web', registry: new HostRegistry(db), localDaemonCommand: null });
    const ctx = { sessionId: 's1', emit: () => undefined };
    try {
      const input = {
        name: 'rig',
        address: sshd.host,
        port: sshd.port,
        user: sshd.user,
        auth: { type: 'keyFile' as const, path: sshd.clientKeyPath },
      };
      const added = await service.dispatch('hosts.add', input, ctx);
      const hostId = (added as { value: { id: string } }).value.id;
      const first = await service.dispatch('hosts.connect', { hostId }, ctx);
      expect(first).toMatchObject({ ok: false, error: { kind: 'host_key_unknown' } });
      const fingerprint = String(
        (first as unknown as { error: { details: { fingerprint: string } } }).error.details.fingerprint,
      );
      expect(fingerprint).toBe(sshd.hostKeyFingerprint);

      await service.dispatch('hosts.update', { hostId, host: { ...input, address: '127.0.0.2' } }, ctx);
      const stale = await service.dispatch('hosts.trustHostKey', { hostId, fingerprint }, ctx);
      expect(stale).toMatchObject({ ok: false, error: { kind: 'invalid_state' } });

      // Back where it was, the key is shown again and trusting it connects.
      await service.dispatch('hosts.update', { hostId, host: input }, ctx);
      expect(await service.dispatch('hosts.connect', { hostId }, ctx)).toMatchObject({
        ok: false,
        error: { kind: 'host_key_unknown' },
      });
      expect(await service.dispatch('hosts.trustHostKey', { hostId, fingerprint }, ctx)).toMatchObject({
        ok: true,
        value: { state: 'connected' },
      });
    } finally {
      service.shutdown();
      db.close();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('authenticates with a key held by a real ssh-agent', async () => {
    const dir = makeTempDir('agent');
    const sock = path.join(dir, 'agent.sock');
    const agent = spawn('ssh-agent', ['-D', '-a', sock], { stdio: ['ignore', 'pipe', 'inherit'] });
    try {
      // It prints where it listens once it does.
      await waitForOutput(agent.stdout, /SSH_AUTH_SOCK=/, 10_000, 'ssh-agent');
      execFileSync('ssh-add', [sshd.clientKeyPath], { env: { ...process.env, SSH_AUTH_SOCK: sock }, stdio: 'pipe' });
      const t = await connect({ auth: { type: 'agent' }, agentSocket: sock });
      const ch = await t.exec('echo agent-$((20+1))');
      expect(await collect(ch, /agent-21/)).toBe('agent-21');
      expect(fs.readFileSync(path.join(sshd.dir, 'sshd.log'), 'utf8')).toMatch(/Accepted publickey for root/);
      t.close();
    } finally {
      agent.kill('SIGTERM');
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('calls daemon.info through `firedeckd dial-stdio` on an exec channel', async () => {
    const t = await connect();
    const ch = await t.exec('firedeckd dial-stdio');
    const client = new DaemonClient(ch.stream);
    const info = await client.call('daemon.info', {});
    expect(info).toMatchObject({ hostname: (await daemon.call('daemon.info', {})).hostname, protocolVersion: 1 });
    client.close();
  });

  it('gives a command a pty of the asked size and passes resizes on', async () => {
    const t = await connect();
    const ch = await t.exec(`sh -c 'stty size; read x; stty size'`, { pty: { cols: 100, rows: 30 } });
    expect(await collect(ch, /30 100/)).toBe('30 100');
    ch.resize(120, 40);
    ch.stream.write('\n');
    expect(await collect(ch, /40 120/)).toBe('40 120');
    await ch.exited;
  });
});

describe('host connection: reconnect with backoff', () => {
  it('shows reconnecting when the SSH link is killed and recovers on its own', async () => {
    const states: HostStatus[] = [];
    const waiters: { pred: (s: HostStatus) => boolean; resolve: () => void }[] = [];
    const conn = new HostConnection({
      hostId: 'h-00000000',
      openTransport: () => connect(),
      daemonCommand: 'firedeckd',
      onStatus: (s) => {
        states.push(s);
        for (const w of waiters.splice(0)) {
          if (w.pred(s)) w.resolve();
          else waiters.push(w);
        }
      },
      onEvent: () => undefined,
      backoff: { initialMs: 100, maxMs: 1000, factor: 2 },
    });
    const until = (pred: (s: HostStatus) => boolean): Promise<void> =>
      new Promise((resolve) => {
        if (pred(conn.status)) resolve();
        else waiters.push({ pred, resolve });
      });
    try {
      const first = await conn.connect();
      expect(first.state).toBe('connected');
      expect(first.info?.version).toBeTruthy();

      // Kill the per-connection sshd processes: the listener stays, this link dies.
      const children = execFileSync('pgrep', ['-P', String(sshd.pid)])
        .toString()
        .trim()
        .split('\n')
        .map(Number);
      expect(children.length).toBeGreaterThan(0);
      for (const pid of children) process.kill(pid, 'SIGKILL');

      await until((s) => s.state === 'reconnecting');
      await until((s) => s.state === 'connected');
      expect(await conn.client().call('daemon.info', {})).toMatchObject({ protocolVersion: 1 });

      // The daemon dying ends dial-stdio: the same path brings the link back once it is up again.
      await daemon.kill9();
      await until((s) => s.state === 'reconnecting');
      await daemon.restart();
      await until((s) => s.state === 'connected');
      expect(states.filter((s) => s.state === 'reconnecting').length).toBeGreaterThanOrEqual(2);
    } finally {
      conn.disconnect();
    }
  });
});

describe('a mutating call whose answer is lost with the SSH link', () => {
  it('is sent again after the reconnect with its idempotency key, and the daemon applies it once', async () => {
    const conn = new HostConnection({
      hostId: 'h-00000001',
      openTransport: () => connect(),
      daemonCommand: 'firedeckd',
      onStatus: () => undefined,
      onEvent: () => undefined,
      backoff: { initialMs: 100, maxMs: 1000, factor: 2 },
    });
    const marker = `retry-${Date.now()}.invalid`;
    try {
      await conn.connect();
      const auditBefore = (await conn.call('audit.list', { method: 'proxy.set' })) as { entries: unknown[] };
      // The daemon stops reading for a moment: the call reaches its socket, then the link dies before any answer.
      const daemonPid = daemon.pid();
      process.kill(daemonPid, 'SIGSTOP');
      let call: Promise<unknown>;
      try {
        call = conn.call('proxy.set', { https: `http://${marker}:3128` });
        await waitForUnreadBytes(daemonPid);
        const children = execFileSync('pgrep', ['-P', String(sshd.pid)])
          .toString()
          .trim()
          .split('\n')
          .map(Number);
        for (const pid of children) process.kill(pid, 'SIGKILL');
      } finally {
        process.kill(daemonPid, 'SIGCONT');
      }
      await expect(call).resolves.toMatchObject({ configured: true, https: `http://${marker}:3128` });
      const audit = (await conn.call('audit.list', { method: 'proxy.set' })) as {
        entries: { params: { https?: string } }[];
      };
      // Applied once: one audit row for it, and the daemon says it replayed the second.
      expect(audit.entries.length - auditBefore.entries.length).toBe(1);
      expect(audit.entries.filter((e) => e.params.https?.includes(marker))).toHaveLength(1);
      expect(daemon.log()).toMatch(/proxy\.set from root: sent again with its idempotency key; replayed/);
    } finally {
      conn.disconnect();
      await conn.call('proxy.clear', {}).catch(() => undefined);
    }
  });
});

/** Resolves once a unix socket of process `pid` holds bytes it has not read (`ss` Recv-Q), polled. */
async function waitForUnreadBytes(pid: number): Promise<void> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    const out = execFileSync('ss', ['-xHp'], { encoding: 'utf8' });
    const queued = out
      .split('\n')
      .filter((l) => l.includes(`pid=${pid},`))
      .some((l) => Number(l.trim().split(/\s+/)[2] ?? 0) > 0);
    if (queued) return;
    if (Date.now() > deadline) throw new Error(`no unread bytes on a socket of pid ${pid}:\n${out}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
