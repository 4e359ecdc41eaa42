import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { Readable, Writable } from 'node:stream';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Vm } from '../../src/shared/protocol/vm';
import { AuditLog, type AuditEntry } from '../../host-daemon/src/store/auditLog';
import { startDaemon, type DaemonRig } from '../rig/daemon';
import { installTestImage } from '../rig/testImage';
import { makeTempDir, requireTool, waitForOutput } from '../rig/tmp';
import { startXvnc, type Xvnc } from '../rig/xvnc';
import { removeLinks } from './daemon-helpers';

/**
 * `firedeckd console|shell|vnc` run by a real non-root member of the daemon's socket group against a real
 * guest: the daemon, as root, reads the console, holds the guest key and does the VNC authentication, and
 * the member can read none of those secrets itself, nor reach the serial console around the daemon.
 *
 * The socket group is the daemon's `group` setting (FIREDECK_GROUP, `firedeck` by default); the suite makes a
 * group of its own for it, so a host's real `firedeck` group is never touched.
 *
 * The `test` image has no VNC server, so the browser VM (the same image, booted as kind browser) gets one
 * from the host: a real TigerVNC Xvnc with VncAuth and the VM's own password, listening on the VM's leased
 * address, which the suite puts on a local veth link of its own so that the host's connection to
 * `<vm address>:5900` lands on it. The guest announces `FIREDECK-READY vnc` on its serial console, typed by the
 * member through `firedeckd console --attach` (as the browser image's desktop service would print it).
 */

const PREFIX = 'fdcm';
const BRIDGE = `${PREFIX}br0`;
const VNC_LINK = `${PREFIX}vnc0`;
const CIDR = '10.67.1.0/24';
const BOOT_MS = 300_000;
const SUFFIX = crypto.randomBytes(3).toString('hex');
const GROUP = `fdcm-grp-${SUFFIX}`;
const USER = `fdcm-op-${SUFFIX}`;
const GEOMETRY = { width: 640, height: 480 };

let daemon: DaemonRig;
let member: { uid: number; gid: number };
let cliVm: Promise<Vm>;
let deskVm: Promise<Vm>;
let xvnc: Xvnc | null = null;
let tmuxSocket: string | null = null;

/** Users and groups a crashed earlier run of this suite left behind (their names are this suite's own). */
function removeStaleAccounts(): void {
  const names = (file: string, prefix: string): string[] =>
    fs
      .readFileSync(file, 'utf8')
      .split('\n')
      .map((line) => line.split(':')[0]!)
      .filter((n) => n.startsWith(prefix));
  for (const user of names('/etc/passwd', 'fdcm-op-')) spawnSyncQuiet('userdel', [user]);
  for (const group of names('/etc/group', 'fdcm-grp-')) spawnSyncQuiet('groupdel', [group]);
}

beforeAll(async () => {
  removeLinks(PREFIX);
  removeStaleAccounts();
  execFileSync('groupadd', [GROUP]);
  execFileSync('useradd', ['--no-create-home', '--shell', '/usr/sbin/nologin', '--groups', GROUP, USER]);
  const ids = (flag: string): number => Number(execFileSync('id', [flag, USER], { encoding: 'utf8' }).trim());
  member = { uid: ids('-u'), gid: ids('-g') };
  daemon = await startDaemon({
    env: { FIREDECK_BRIDGE: BRIDGE, FIREDECK_CIDR: CIDR, FIREDECK_DEVICE_PREFIX: PREFIX, FIREDECK_GROUP: GROUP },
  });
  // The rig's temp base is private (mkdtemp); on a host the run dir /run/firedeck is 0755 for the socket's
  // group to reach the socket. The state dir stays as the rig made it (traversable), so what keeps the member
  // out of each secret below is that file's own mode, not a directory above it.
  fs.chmodSync(path.dirname(daemon.runDir), 0o755);
  await installTestImage(daemon.stateDir);
  cliVm = daemon.call('vm.create', { name: 'm-cli', kind: 'cli', owner: 'ops', image: 'test', memoryMib: 384 });
  deskVm = daemon.call('vm.create', { name: 'm-desk', kind: 'browser', owner: 'ops', image: 'test', memoryMib: 384 });
  cliVm.catch(() => undefined);
  deskVm.catch(() => undefined);
});

afterAll(async () => {
  if (tmuxSocket) {
    spawnSyncQuiet('tmux', ['-S', tmuxSocket, 'kill-server']);
    fs.rmSync(path.dirname(tmuxSocket), { recursive: true, force: true });
  }
  await xvnc?.stop();
  spawnSyncQuiet('ip', ['link', 'del', VNC_LINK]);
  if (daemon) {
    for (const vm of await daemon.call('vm.list', {}).catch(() => [] as Vm[])) {
      await daemon.call('vm.destroy', { id: vm.id }).catch(() => undefined);
    }
    await daemon.stop();
  }
  removeLinks(PREFIX);
  spawnSyncQuiet('userdel', [USER]);
  spawnSyncQuiet('groupdel', [GROUP]);
});

function spawnSyncQuiet(cmd: string, args: string[]): void {
  try {
    execFileSync(cmd, args, { stdio: 'ignore' });
  } catch {
    // best effort: the thing may not exist
  }
}

/** argv that runs `argv` as the member: its uid, primary group and supplementary groups, a clean environment. */
function asMember(argv: string[]): string[] {
  return [
    'setpriv',
    `--reuid=${member.uid}`,
    `--regid=${member.gid}`,
    '--init-groups',
    '--',
    'env',
    '-i',
    'PATH=/usr/bin:/bin',
    'HOME=/',
    'TERM=xterm',
    ...argv,
  ];
}

function runAsMember(argv: string[], timeoutMs = 120_000): Promise<{ code: number; stdout: string; stderr: string }> {
  const [cmd, ...args] = asMember(argv);
  return new Promise((resolve) => {
    const child = execFile(cmd!, args, { timeout: timeoutMs, maxBuffer: 8 * 1024 * 1024 }, (err, stdout, stderr) =>
      resolve({ code: err ? ((err as { code?: number }).code ?? -1) : 0, stdout, stderr }),
    );
    child.stdin?.end();
  });
}

function spawnAsMember(argv: string[]): ChildProcess {
  const [cmd, ...args] = asMember(argv);
  return spawn(cmd!, args, { stdio: ['pipe', 'pipe', 'pipe'] });
}

/**
 * Run by the member with node: for each path, what opening it for reading (a socket: connecting to it) gives,
 * `ok` or the errno code; with `--sweep DIR…`, every file under the dirs that the member can read and every
 * socket it can connect to.
 */
const PROBE = String.raw`
const fs = require('node:fs');
const net = require('node:net');
const path = require('node:path');
const tryConnect = (p) => new Promise((resolve) => {
  const s = net.connect(p);
  s.once('connect', () => { s.destroy(); resolve('ok'); });
  s.once('error', (e) => resolve(e.code));
});
const probe = async (p) => {
  let st;
  try { st = fs.lstatSync(p); } catch (e) { return e.code; }
  if (st.isSocket()) return tryConnect(p);
  try { fs.closeSync(fs.openSync(p, 'r')); return 'ok'; } catch (e) { return e.code; }
};
(async () => {
  const [mode, ...paths] = process.argv.slice(1);
  const out = {};
  if (mode === '--sweep') {
    const walk = async (dir) => {
      let names;
      try { names = fs.readdirSync(dir); } catch { return; }
      for (const n of names) {
        const p = path.join(dir, n);
        let st;
        try { st = fs.lstatSync(p); } catch { continue; }
        if (st.isDirectory()) await walk(p);
        else if (!st.isSymbolicLink() && (await probe(p)) === 'ok') out[p] = (st.mode & 0o7777).toString(8);
      }
    };
    for (const d of paths) await walk(d);
  } else {
    for (const p of paths) out[p] = await probe(p);
  }
  process.stdout.write(JSON.stringify(out));
})();
`;

async function probeAsMember(paths: string[]): Promise<Record<string, string>> {
  const r = await runAsMember([process.execPath, '-e', PROBE, '--', '--probe', ...paths]);
  expect(r.stderr).toBe('');
  return JSON.parse(r.stdout) as Record<string, string>;
}

async function sweepAsMember(dirs: string[]): Promise<Record<string, string>> {
  const r = await runAsMember([process.execPath, '-e', PROBE, '--', '--sweep', ...dirs]);
  expect(r.stderr).toBe('');
  return JSON.parse(r.stdout) as Record<string, string>;
}

/** Reads exact byte counts from a stream, as a VNC viewer does during its handshake. */
class ByteReader {
  private buffer = Buffer.alloc(0);
  private waiters: (() => void)[] = [];
  private ended = false;

  constructor(stream: Readable) {
    stream.on('data', (chunk: Buffer) => {
      this.buffer = Buffer.concat([this.buffer, chunk]);
      this.waiters.splice(0).forEach((w) => w());
    });
    stream.on('close', () => {
      this.ended = true;
      this.waiters.splice(0).forEach((w) => w());
    });
  }

  async read(count: number): Promise<Buffer> {
    while (this.buffer.length < count) {
      if (this.ended) throw new Error(`stream ended with ${this.buffer.length} of ${count} bytes`);
      await new Promise<void>((resolve) => this.waiters.push(resolve));
    }
    const out = this.buffer.subarray(0, count);
    this.buffer = this.buffer.subarray(count);
    return out;
  }
}

function exited(child: ChildProcess): Promise<number | null> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve(child.exitCode);
    else child.once('exit', (code) => resolve(code));
  });
}

function auditEntries(): AuditEntry[] {
  const db = new Database(path.join(daemon.stateDir, 'firedeck.db'), { readonly: true });
  try {
    return new AuditLog(db).recent(500).filter((e) => e.method === 'channel.open');
  } finally {
    db.close();
  }
}

/** A tmux pane's text (tmux has no event for "this text appeared": look again until the deadline). */
async function waitForPane(session: string, pattern: RegExp, timeoutMs: number): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  let text = '';
  for (;;) {
    text = execFileSync('tmux', ['-S', tmuxSocket!, 'capture-pane', '-p', '-t', session], { encoding: 'utf8' });
    if (pattern.test(text)) return text;
    if (Date.now() > deadline) throw new Error(`tmux pane: no ${pattern} within ${timeoutMs} ms; pane:\n${text}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('channels through the daemon for a non-root member of its group', { timeout: 600_000 }, () => {
  it('the member is not root, is in the socket group, and may connect to the daemon socket', async () => {
    expect(member.uid).not.toBe(0);
    const groups = execFileSync('id', ['-Gn', USER], { encoding: 'utf8' }).trim().split(/\s+/);
    expect(groups).toContain(GROUP);
    const st = fs.statSync(daemon.socketPath);
    expect(st.mode & 0o777).toBe(0o660);
    expect(st.gid).toBe(Number(execFileSync('getent', ['group', GROUP], { encoding: 'utf8' }).split(':')[2]));
    expect(await probeAsMember([daemon.socketPath])).toEqual({ [daemon.socketPath]: 'ok' });
  });

  it('firedeckd console <vm>: the boot log, read by the daemon', async () => {
    const vm = await cliVm;
    await daemon.call('vm.waitReady', { id: vm.id, marker: 'sshd', timeoutSeconds: BOOT_MS / 1000 });
    const r = await runAsMember([daemon.firedeckdCommand, 'console', 'm-cli', '--lines', '500']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('FIREDECK-READY vm');
    expect(r.stdout).toMatch(/FIREDECK-HOSTKEY ssh-ed25519 /);
  });

  it('firedeckd shell <vm> -- command: runs in the guest as firedeck, stdout and exit code come back', async () => {
    const r = await runAsMember([daemon.firedeckdCommand, 'shell', 'm-cli', '--', 'id -un; hostname; exit 7']);
    expect(r.stderr).toBe('');
    expect(r.stdout.split('\n')).toEqual(['firedeck', 'm-cli', '']);
    expect(r.code).toBe(7);
  });

  it('firedeckd shell <vm> on a terminal: a pty of its size, and a resize reaches the guest pty', async () => {
    const tmux = requireTool('/usr/bin/tmux', 'tmux');
    tmuxSocket = path.join(makeTempDir('tmux'), 'tmux.sock');
    const command = asMember([daemon.firedeckdCommand, 'shell', 'm-cli'])
      .map((a) => `'${a.replace(/'/g, `'\\''`)}'`)
      .join(' ')
      .concat('; echo "cli-exited=$?"');
    execFileSync(tmux, ['-S', tmuxSocket, '-f', '/dev/null', 'new-session', '-d', '-s', 'sh', '-x', '80', '-y', '24']);
    execFileSync(tmux, ['-S', tmuxSocket, 'set-option', '-g', 'remain-on-exit', 'on']);
    execFileSync(tmux, ['-S', tmuxSocket, 'respawn-pane', '-k', '-t', 'sh', command]);
    const typeLine = (line: string): void => {
      execFileSync(tmux, ['-S', tmuxSocket!, 'send-keys', '-t', 'sh', '-l', line]);
      execFileSync(tmux, ['-S', tmuxSocket!, 'send-keys', '-t', 'sh', 'Enter']);
    };
    // The guest's login shell prompt, then its idea of the terminal's size.
    await waitForPane('sh', /^\$$/m, 60_000); // the guest's `$ ` prompt (capture-pane trims trailing blanks)
    typeLine('echo "size=$(stty size)"');
    await waitForPane('sh', /^size=24 80$/m, 30_000);
    execFileSync(tmux, ['-S', tmuxSocket, 'resize-window', '-t', 'sh', '-x', '101', '-y', '33']);
    // The resize travels as a frame on the channel after SIGWINCH; the typed line may overtake it, so ask
    // again until the guest's pty has the new size (or the deadline says the resize never arrived).
    const deadline = Date.now() + 30_000;
    for (let n = 0; ; n++) {
      typeLine(`echo "resized${n}=$(stty size)"`);
      const pane = await waitForPane('sh', new RegExp(`^resized${n}=\\d+ \\d+$`, 'm'), 30_000);
      if (new RegExp(`^resized${n}=33 101$`, 'm').test(pane)) break;
      if (Date.now() > deadline) throw new Error(`the guest pty never saw 33x101:\n${pane}`);
    }
    typeLine('exit');
    // The guest shell's exit ends `firedeckd shell` with its status.
    await waitForPane('sh', /^cli-exited=0$/m, 30_000);
  });

  it('firedeckd vnc <vm>: RFB through the daemon, which did VncAuth with the password the member cannot read', async () => {
    const vm = await deskVm;
    expect(vm.kind).toBe('browser');
    const secretsFile = path.join(daemon.stateDir, 'vms', vm.id, 'secrets.json');
    const { vncPassword } = JSON.parse(fs.readFileSync(secretsFile, 'utf8')) as { vncPassword: string };
    // The host's connection to the VM's address lands on this Xvnc: a /32 on a local veth of ours (this
    // kernel has no dummy links) puts the address in the host's local table.
    execFileSync('ip', ['link', 'add', VNC_LINK, 'type', 'veth', 'peer', 'name', `${VNC_LINK}p`]);
    execFileSync('ip', ['addr', 'add', `${vm.address!}/32`, 'dev', VNC_LINK]);
    execFileSync('ip', ['link', 'set', VNC_LINK, 'up']);
    xvnc = await startXvnc({
      host: vm.address!,
      port: 5900,
      password: vncPassword,
      geometry: `${GEOMETRY.width}x${GEOMETRY.height}`,
    });
    await daemon.call('vm.waitReady', { id: vm.id, marker: 'sshd', timeoutSeconds: BOOT_MS / 1000 });

    // The guest announces its desktop on the serial console; the member types it through the daemon.
    const attach = spawnAsMember([daemon.firedeckdCommand, 'console', 'm-desk', '--attach']);
    await waitForOutput(attach.stderr!, /\[attached to m-desk/, 30_000, 'firedeckd console --attach');
    // Bytes that reach the serial port before init has started the console's shell are lost, and nothing says
    // when it has: ask until the shell answers (it computes 42, which an echo of the typed line does not show).
    let serial = '';
    attach.stdout!.on('data', (c: Buffer) => (serial += c.toString()));
    const deadline = Date.now() + 60_000;
    while (!/42-shell-up/.test(serial)) {
      if (Date.now() > deadline) throw new Error(`no shell on the console of m-desk:\n${serial.slice(-1000)}`);
      attach.stdin!.write('\necho $((6*7))-shell-up\n');
      await waitForOutput(attach.stdout!, /42-shell-up/, 2000, 'console shell').catch(() => undefined);
    }
    attach.stdin!.write('echo FIREDECK-READY vnc\n');
    await daemon.call('vm.waitReady', { id: vm.id, marker: 'vnc', timeoutSeconds: 120 });
    attach.stdin!.write(Buffer.from([0x1d])); // Ctrl-]: detach
    expect(await exited(attach)).toBe(0);

    const viewer = spawnAsMember([daemon.firedeckdCommand, 'vnc', 'm-desk']);
    let stderr = '';
    viewer.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
    const rfb = new ByteReader(viewer.stdout!);
    const send = (data: string | Uint8Array): boolean => (viewer.stdin as Writable).write(data);
    expect((await rfb.read(12)).toString()).toBe('RFB 003.008\n');
    send('RFB 003.008\n');
    const count = (await rfb.read(1))[0]!;
    // Xvnc demands VncAuth (2); the member is offered only None (1): the daemon answered the challenge.
    expect([...(await rfb.read(count))]).toEqual([1]);
    send(Buffer.from([1]));
    expect((await rfb.read(4)).readUInt32BE(0)).toBe(0); // SecurityResult OK
    send(Buffer.from([1])); // ClientInit, shared
    const init = await rfb.read(24);
    expect({ width: init.readUInt16BE(0), height: init.readUInt16BE(2) }).toEqual(GEOMETRY);
    const name = (await rfb.read(init.readUInt32BE(20))).toString();
    expect(name.length).toBeGreaterThan(0);
    viewer.stdin!.end();
    expect(await exited(viewer)).toBe(0);
    expect(stderr).not.toContain(vncPassword);
  });

  it('the member gets EACCES on the guest key, each VNC password file and the console socket', async () => {
    const cli = await cliVm;
    const desk = await deskVm;
    const secrets = [
      path.join(daemon.stateDir, 'keys', 'guest_ed25519'),
      path.join(daemon.stateDir, 'vms', desk.id, 'secrets.json'),
      path.join(daemon.stateDir, 'vms', desk.id, 'config.img'),
      path.join(daemon.stateDir, 'vms', cli.id, 'config.img'),
      path.join(daemon.runDir, 'vms', cli.id, 'console.sock'),
      path.join(daemon.runDir, 'vms', desk.id, 'console.sock'),
      ...(xvnc ? [xvnc.passwordFile] : []),
    ];
    for (const p of secrets) expect(fs.existsSync(p), p).toBe(true);
    const got = await probeAsMember(secrets);
    expect(got).toEqual(Object.fromEntries(secrets.map((p) => [p, 'EACCES'])));
    // Root (the daemon's user) still reaches them: the refusal is the member's, not a missing file.
    expect(fs.readFileSync(secrets[0]!, 'utf8')).toMatch(/PRIVATE KEY/);
  });

  it('nothing under the state and run dirs that the member can read holds a secret', async () => {
    const readable = await sweepAsMember([daemon.stateDir, daemon.runDir]);
    const names = Object.keys(readable).map((p) =>
      p.startsWith(daemon.stateDir) ? `state${p.slice(daemon.stateDir.length)}` : `run${p.slice(daemon.runDir.length)}`,
    );
    const allowed = [
      /^run\/firedeckd\.sock$/, // the socket of the group, which is the point
      /^run\/bin\/firedeckd$/, // the rig's CLI wrapper (socket and dirs only)
      /^state\/keys\/guest_ed25519\.pub$/,
      /^state\/images\//, // golden images: public recipe output
    ];
    expect(names.filter((n) => !allowed.some((a) => a.test(n)))).toEqual([]);
  });

  it('every channel.open is in the audit log: who, which VM, which kind, and no secret', async () => {
    const cli = await cliVm;
    const desk = await deskVm;
    const refused = await runAsMember([daemon.firedeckdCommand, 'shell', 'no-such-vm', '--', 'true']);
    expect(refused.code).toBe(1);
    const entries = auditEntries();
    const mine = entries.filter((e) => e.user === USER);
    expect(mine.every((e) => e.uid === member.uid)).toBe(true);
    const summary = mine.map((e) => {
      const p = e.params as { kind?: string; vmId?: string | null; vm?: string };
      return `${p.kind}:${p.vmId ?? p.vm}:${e.ok ? 'ok' : e.errorKind}`;
    });
    expect(summary).toEqual(
      expect.arrayContaining([
        `console:${cli.id}:ok`,
        `shell:${cli.id}:ok`,
        `console:${desk.id}:ok`,
        `vnc:${desk.id}:ok`,
        'shell:no-such-vm:not_found',
      ]),
    );
    const text = JSON.stringify(entries);
    const { vncPassword, agentToken } = JSON.parse(
      fs.readFileSync(path.join(daemon.stateDir, 'vms', desk.id, 'secrets.json'), 'utf8'),
    ) as { vncPassword: string; agentToken: string };
    expect(text).not.toContain(vncPassword);
    expect(text).not.toContain(agentToken);
    // A shell's command line may carry anything: it is not recorded.
    expect(text).not.toContain('id -un');
  });
});
