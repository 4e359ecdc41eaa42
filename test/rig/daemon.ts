import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { FiredeckError } from '../../src/shared/errors';
import { LineFramer } from '../../src/shared/rpc/framing';
import { RpcClient, type RpcClientOptions } from '../../src/shared/rpc/rpcClient';
import type { MethodName, ParamsOf, ResultOf } from '../../src/shared/protocol/methods';
import { stopChild } from '../../host-daemon/src/system/processes';
import { makeTempDir, waitForOutput } from './tmp';

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const DAEMON_BUNDLE = path.join(REPO_ROOT, 'host-daemon/dist/firedeckd.cjs');

let built: Promise<void> | null = null;

/** Builds the daemon bundle once per test process, so a suite always runs the code it sees. */
export function buildDaemon(): Promise<void> {
  built ??= Promise.resolve().then(() => {
    execFileSync(process.execPath, [path.join(REPO_ROOT, 'host-daemon/build.mjs')], { stdio: 'inherit' });
  });
  return built;
}

export interface DaemonOptions {
  /** Extra environment for the daemon (FIREDECK_BRIDGE, FIREDECK_CIDR, FIREDECK_DEVICE_PREFIX, …). */
  env?: Record<string, string>;
  /** Reuse the state of an earlier daemon (its dirs), e.g. after kill9(). */
  reuse?: { stateDir: string; runDir: string };
}

export interface DaemonRig {
  socketPath: string;
  stateDir: string;
  runDir: string;
  /** Holds a `firedeckd` wrapper bound to this daemon's socket: put it first on PATH (e.g. in the sshd rig). */
  binDir: string;
  /** A shell command that runs this daemon's CLI, e.g. `${firedeckdCommand} vm ls`. */
  firedeckdCommand: string;
  pid(): number;
  /** Everything the daemon wrote to stderr so far. */
  log(): string;
  call<M extends MethodName>(method: M, params: ParamsOf<M>): Promise<ResultOf<M>>;
  /** Sends raw text on a fresh connection and collects the first `count` frames that come back. */
  raw(text: string, count: number): Promise<unknown[]>;
  kill9(): Promise<void>;
  /** Starts the daemon again on the same dirs (after kill9 or stop). */
  restart(): Promise<void>;
  stop(): Promise<void>;
}

/** The device prefix of daemons started without a network of their suite's own. */
const RIG_PREFIX = 'fdrg';

/** Removes the rig's default bridge and its daemon's nftables tables (only those). */
function removeRigNetwork(): void {
  const links = JSON.parse(execFileSync('ip', ['-j', 'link', 'show'], { encoding: 'utf8' })) as { ifname: string }[];
  for (const { ifname } of links) if (ifname.startsWith(RIG_PREFIX)) execFileSync('ip', ['link', 'del', ifname]);
  const tables = execFileSync('nft', ['list', 'tables'], { encoding: 'utf8' }).split('\n');
  for (const family of ['bridge', 'inet']) {
    if (tables.includes(`table ${family} firedeck-${RIG_PREFIX}`)) {
      execFileSync('nft', ['delete', 'table', family, `firedeck-${RIG_PREFIX}`]);
    }
  }
}

/**
 * Runs `firedeckd serve` as this (root) user on temp state/run dirs and, unless `env` names another, the rig's
 * own network (bridge fdrgbr0 on 10.213.99.0/24). stop() ends the daemon and removes the dirs it made and that
 * network; it does not touch anything else on the machine.
 */
export async function startDaemon(options: DaemonOptions = {}): Promise<DaemonRig> {
  await buildDaemon();
  const base = options.reuse ? null : makeTempDir('daemon');
  const stateDir = options.reuse?.stateDir ?? path.join(base!, 'state');
  const runDir = options.reuse?.runDir ?? path.join(base!, 'run');
  fs.mkdirSync(stateDir, { recursive: true });
  fs.mkdirSync(runDir, { recursive: true });
  if (base !== null) {
    // As on a host (/var/lib/firedeck 0750 root, /run/firedeck 0755): a sandboxed QEMU, which runs as a uid of
    // its own, makes its sockets in its VM's run dir and must be able to reach it; the state stays root's.
    fs.chmodSync(base, 0o711);
    fs.chmodSync(stateDir, 0o700);
    fs.chmodSync(runDir, 0o755);
  }
  const socketPath = path.join(runDir, 'firedeckd.sock');
  const binDir = path.join(runDir, 'bin');
  fs.mkdirSync(binDir, { recursive: true });
  const env: Record<string, string> = {
    FIREDECK_SOCKET: socketPath,
    FIREDECK_STATE_DIR: stateDir,
    FIREDECK_RUN_DIR: runDir,
    FIREDECK_QEMU_ACCEL: 'tcg',
    // The rig's own network, never the daemon's defaults (fdbr0, 10.213.0.0/24, tables firedeck-fd), which a
    // real firedeckd on this machine may be using: its bridge, subnet and nftables tables are the rig's alone.
    FIREDECK_BRIDGE: `${RIG_PREFIX}br0`,
    FIREDECK_CIDR: '10.213.99.0/24',
    FIREDECK_DEVICE_PREFIX: RIG_PREFIX,
    ...options.env,
  };
  const ownNetwork = env.FIREDECK_DEVICE_PREFIX === RIG_PREFIX;
  const exports = Object.entries(env)
    .map(([k, v]) => `export ${k}=${shellQuote(v)}`)
    .join('\n');
  fs.writeFileSync(
    path.join(binDir, 'firedeckd'),
    `#!/bin/sh\n${exports}\nexec ${shellQuote(process.execPath)} ${shellQuote(DAEMON_BUNDLE)} "$@"\n`,
    { mode: 0o755 },
  );

  let child: ChildProcess | null = null;
  let stderr = '';
  const launch = async (): Promise<void> => {
    const proc = spawn(process.execPath, [DAEMON_BUNDLE, 'serve'], {
      env: { ...process.env, ...env },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    child = proc;
    proc.stderr!.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    await waitForOutput(proc.stderr!, /serving .*firedeckd\.sock/, 30_000, 'firedeckd serve');
  };
  await launch();

  return {
    socketPath,
    stateDir,
    runDir,
    binDir,
    firedeckdCommand: path.join(binDir, 'firedeckd'),
    pid: () => child?.pid ?? -1,
    log: () => stderr,
    call: (method, params) => callDaemon(socketPath, method, params),
    raw: (text, count) => rawExchange(socketPath, text, count),
    async kill9() {
      if (child) await stopChild(child, 'SIGKILL');
    },
    async restart() {
      await launch();
    },
    async stop() {
      if (child) await stopChild(child);
      if (base) fs.rmSync(base, { recursive: true, force: true });
      if (ownNetwork) removeRigNetwork();
    },
  };
}

/** The shared RpcClient on a fresh connection to the daemon's socket; `close()` ends that connection. */
export function connectRpc(
  socketPath: string,
  options: Omit<RpcClientOptions, 'write'> = {},
): Promise<{ rpc: RpcClient; close(): void; destroy(): void }> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(socketPath);
    socket.once('error', reject);
    socket.once('connect', () => {
      socket.off('error', reject);
      const rpc = new RpcClient({ callTimeoutMs: 300_000, ...options, write: (frame) => socket.write(frame) });
      socket.on('data', (chunk: Buffer) => rpc.push(chunk));
      socket.on('error', (err) => rpc.linkClosed(FiredeckError.from(err, 'disconnected')));
      socket.on('close', () => rpc.linkClosed());
      resolve({ rpc, close: () => socket.end(), destroy: () => socket.destroy() });
    });
  });
}

/** One JSON-RPC call on a fresh connection; errors come back as FiredeckError. */
export async function callDaemon<M extends MethodName>(
  socketPath: string,
  method: M,
  params: ParamsOf<M>,
  timeoutMs = 300_000,
): Promise<ResultOf<M>> {
  const link = await connectRpc(socketPath, { callTimeoutMs: timeoutMs });
  try {
    return await link.rpc.call(method, params);
  } finally {
    link.close();
  }
}

/**
 * The first `count` frames (parsed, whatever their shape) that `from` carries, for tests of the wire itself;
 * rejects when it closes first or at the deadline, with `context()` (e.g. the peer's stderr) in the message.
 */
export function collectFrames(
  from: Readable,
  count: number,
  options: { timeoutMs?: number; context?: () => string } = {},
): Promise<Record<string, unknown>[]> {
  return new Promise((resolve, reject) => {
    const framer = new LineFramer(64 * 1024 * 1024);
    const frames: Record<string, unknown>[] = [];
    const fail = (why: string): void => {
      clearTimeout(timer);
      reject(
        new Error(
          `${why}: got ${frames.length} of ${count} frames ${JSON.stringify(frames)} ${options.context?.() ?? ''}`,
        ),
      );
    };
    const timer = setTimeout(() => fail('no more frames in time'), options.timeoutMs ?? 10_000);
    from.on('data', (chunk: Buffer) => {
      for (const ev of framer.push(chunk))
        if (ev.type === 'frame') frames.push(JSON.parse(ev.text) as Record<string, unknown>);
      if (frames.length >= count) {
        clearTimeout(timer);
        resolve(frames.slice(0, count));
      }
    });
    from.once('close', () => fail('closed'));
    from.once('error', (err: Error) => fail(err.message));
  });
}

async function rawExchange(socketPath: string, text: string, count: number): Promise<unknown[]> {
  const socket = net.connect(socketPath);
  socket.once('connect', () => socket.write(text));
  try {
    return await collectFrames(socket, count);
  } finally {
    socket.destroy();
  }
}

function shellQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}
