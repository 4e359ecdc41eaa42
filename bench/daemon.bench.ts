import { execFileSync, spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { RpcClient } from '../src/shared/rpc/rpcClient';
import { openDb } from '../host-daemon/src/store/db';
import { VmStore } from '../host-daemon/src/store/vmStore';
import { startDaemon, type DaemonRig } from '../test/rig/daemon';
import { startSshd, type Sshd } from '../test/rig/sshd';
import { makeTempDir } from '../test/rig/tmp';
import { msSince as ms, percentile, record } from './report';

/**
 * firedeckd's costs, each against a baseline measured in the same run:
 *  - cloning a 2 GB golden image per VM: `cp --reflink=auto --sparse=always` (and a qcow2 overlay) vs `dd`;
 *  - one RPC round trip over an open SSH channel (`firedeckd dial-stdio`) vs a whole `ssh host true`;
 *  - the daemon's RSS with 100 VM records vs with none.
 */
const cleanups: (() => Promise<void> | void)[] = [];
afterAll(async () => {
  for (const c of cleanups.reverse()) await c();
});

function usedMb(file: string): number {
  return Math.round((Number(execFileSync('du', ['-B1', file], { encoding: 'utf8' }).split('\t')[0]) / 1e6) * 10) / 10;
}

function rssKb(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m![1]);
}

describe('firedeckd bench', () => {
  it('clones a 2 GB image: reflink/sparse copy and qcow2 overlay vs dd', () => {
    const dir = makeTempDir('bench-clone');
    cleanups.push(() => fs.rmSync(dir, { recursive: true, force: true }));
    // A golden image like the real ones: 2 GB ext4 with ~600 MB of incompressible files in it.
    const content = path.join(dir, 'content');
    fs.mkdirSync(content);
    for (let i = 0; i < 12; i++) fs.writeFileSync(path.join(content, `blob${i}`), crypto.randomBytes(50 * 1024 * 1024));
    const image = path.join(dir, 'golden.ext4');
    execFileSync('mkfs.ext4', ['-q', '-F', '-d', content, image, '2G']);
    fs.rmSync(content, { recursive: true });
    execFileSync('sync');

    const cpTimes: number[] = [];
    for (let i = 0; i < 3; i++) {
      const target = path.join(dir, `clone${i}.raw`);
      const t0 = process.hrtime.bigint();
      execFileSync('cp', ['--reflink=auto', '--sparse=always', image, target]);
      execFileSync('sync', ['-f', target]);
      cpTimes.push(ms(t0));
    }
    const overlay = path.join(dir, 'overlay.qcow2');
    const t1 = process.hrtime.bigint();
    execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', '-b', image, '-F', 'raw', overlay]);
    const qcowMs = ms(t1);
    const ddTarget = path.join(dir, 'dd.raw');
    const t2 = process.hrtime.bigint();
    execFileSync('dd', [`if=${image}`, `of=${ddTarget}`, 'bs=4M', 'status=none']);
    execFileSync('sync', ['-f', ddTarget]);
    const ddMs = ms(t2);

    const cpMs = percentile(cpTimes, 50);
    const disk = `on disk: ${usedMb(path.join(dir, 'clone0.raw'))} MB vs dd's ${usedMb(ddTarget)} MB`;
    const imageNote = `a 2 GB ext4 image holding ${usedMb(image)} MB`;
    record({
      name: 'rootfs clone: cp --reflink=auto --sparse=always',
      value: cpMs,
      unit: 'ms',
      baselineName: 'dd bs=4M',
      baselineValue: ddMs,
      better: 'lower',
      note: `${imageNote}, median of 3 copies, synced; ${disk}`,
    });
    record({
      name: 'rootfs clone: qemu-img qcow2 overlay',
      value: qcowMs,
      unit: 'ms',
      baselineName: 'dd bs=4M',
      baselineValue: ddMs,
      better: 'lower',
      note: `${imageNote}; overlay on disk: ${usedMb(overlay)} MB`,
    });
    expect(cpMs).toBeGreaterThan(0);
  });

  it('RPC round trip over SSH (dial-stdio) vs ssh host true, p50/p99', async () => {
    const daemon: DaemonRig = await startDaemon({
      env: { FIREDECK_BRIDGE: 'fdt3bbr0', FIREDECK_CIDR: '10.213.38.0/24', FIREDECK_DEVICE_PREFIX: 'fdt3b' },
    });
    cleanups.push(async () => {
      await daemon.stop();
      try {
        execFileSync('ip', ['link', 'del', 'fdt3bbr0']);
      } catch {
        // not created
      }
    });
    const sshd: Sshd = await startSshd({ pathPrepend: [daemon.binDir] });
    cleanups.push(() => sshd.stop());
    const knownHosts = path.join(sshd.dir, 'bench_known_hosts');
    fs.writeFileSync(knownHosts, `[127.0.0.1]:${sshd.port} ${sshd.hostPublicKey}\n`);
    const sshArgs = [
      '-i',
      sshd.clientKeyPath,
      '-p',
      String(sshd.port),
      '-o',
      `UserKnownHostsFile=${knownHosts}`,
      '-o',
      'StrictHostKeyChecking=yes',
      '-o',
      'BatchMode=yes',
      '-o',
      'IdentitiesOnly=yes',
      '-o',
      'LogLevel=ERROR',
      'root@127.0.0.1',
    ];

    const sshTrue: number[] = [];
    for (let i = 0; i < 20; i++) {
      const t0 = process.hrtime.bigint();
      execFileSync('ssh', [...sshArgs, 'true']);
      sshTrue.push(ms(t0));
    }

    // The app's transport: one exec channel running `firedeckd dial-stdio`, many calls on it.
    const channel = spawn('ssh', [...sshArgs, 'firedeckd', 'dial-stdio'], { stdio: ['pipe', 'pipe', 'inherit'] });
    cleanups.push(() => {
      channel.kill();
    });
    const rpc = new RpcClient({ write: (frame) => channel.stdin!.write(frame) });
    channel.stdout!.on('data', (chunk: Buffer) => rpc.push(chunk));
    channel.once('close', () => rpc.linkClosed());
    const call = async (): Promise<number> => {
      const t0 = process.hrtime.bigint();
      await rpc.call('vm.list', {});
      return ms(t0);
    };
    await call(); // connection set-up is not part of a round trip
    const roundTrips: number[] = [];
    for (let i = 1; i <= 500; i++) roundTrips.push(await call());
    channel.stdin!.end();

    for (const p of [50, 99]) {
      record({
        name: `RPC round trip p${p}: vm.list on an open dial-stdio channel`,
        value: percentile(roundTrips, p),
        unit: 'ms',
        baselineName: `ssh host true p${p}`,
        baselineValue: percentile(sshTrue, p),
        better: 'lower',
        target: p === 50 ? { on: 'value', op: '<=', limit: 2 } : undefined,
        note: p === 50 ? '500 calls over sshd on loopback; ssh host true run 20 times' : undefined,
      });
    }
    expect(roundTrips).toHaveLength(500);
  });

  it('daemon RSS with 100 VM records vs none', async () => {
    const env = { FIREDECK_BRIDGE: 'fdt3mbr0', FIREDECK_CIDR: '10.213.37.0/24', FIREDECK_DEVICE_PREFIX: 'fdt3m' };
    const empty = await startDaemon({ env });
    cleanups.push(async () => {
      await empty.stop();
      try {
        execFileSync('ip', ['link', 'del', 'fdt3mbr0']);
      } catch {
        // not created
      }
    });
    const baseIdleKb = rssKb(empty.pid());
    for (let i = 0; i < 200; i++) await empty.call('vm.list', {});
    const baseKb = rssKb(empty.pid());

    await empty.kill9();
    const db = openDb(path.join(empty.stateDir, 'firedeck.db'));
    const store = new VmStore(db);
    for (let i = 0; i < 100; i++) {
      const id = `vm-${i.toString(16).padStart(16, '0')}`;
      store.insert({
        id,
        name: `bench-${i}`,
        kind: i % 4 === 0 ? 'browser' : 'cli',
        owner: `user${i}@example.org`,
        image: 'cli@1',
        driver: 'qemu',
        vcpus: 1,
        memoryMib: 256,
        diskMib: 4096,
        sessionId: null,
        expiresAt: null,
      });
      store.update(id, { state: 'stopped' });
    }
    db.close();
    await empty.restart();
    const withIdleKb = rssKb(empty.pid());
    for (let i = 0; i < 200; i++) expect(await empty.call('vm.list', {})).toHaveLength(100);
    const withKb = rssKb(empty.pid());
    // Growth that stops is V8 heap slack; growth that goes on would be a leak.
    for (let i = 0; i < 1000; i++) await empty.call('vm.list', {});
    const withLaterKb = rssKb(empty.pid());
    const mib = (kb: number): number => kb / 1024;
    record({
      name: 'daemon RSS with 100 VM records, after 200 vm.list calls',
      value: mib(withKb),
      unit: 'MiB',
      baselineName: 'with none',
      baselineValue: mib(baseKb),
      better: 'lower',
      target: { on: 'value', op: '<=', limit: 80 },
      note:
        `${((withKb - baseKb) / 100).toFixed(0)} KiB per VM record; ` +
        `${mib(withLaterKb).toFixed(1)} MiB after 1000 more calls (growth that stops is V8 heap slack)`,
    });
    record({
      name: 'daemon RSS with 100 VM records, after start',
      value: mib(withIdleKb),
      unit: 'MiB',
      baselineName: 'with none',
      baselineValue: mib(baseIdleKb),
      better: 'lower',
    });
  });
});
