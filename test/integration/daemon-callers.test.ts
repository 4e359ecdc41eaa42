import { execFile, execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AuditLog, type AuditEntry } from '../../host-daemon/src/store/auditLog';
import { stateDbPath } from '../../host-daemon/src/store/db';
import { startDaemon, type DaemonRig } from '../rig/daemon';
import { removeLinks } from './daemon-helpers';

/**
 * The daemon (as root) knows who calls it from the kernel: two real OS users, both members of the daemon's
 * socket group, each connect with a hand-made `session.hello` that claims to be someone else (root; the other
 * user) and make one mutating call; the audit log records each as themselves.
 *
 * The socket group is the daemon's `group` setting (FIREDECK_GROUP); the suite makes a group of its own for it,
 * so a host's real `firedeck` group is never touched. No guest boots; the daemon still makes its (own) bridge.
 */

const PREFIX = 'fdpc';
const SUFFIX = crypto.randomBytes(3).toString('hex');
const GROUP = `fdpc-grp-${SUFFIX}`;
const ALICE = `fdpc-a-${SUFFIX}`;
const BOB = `fdpc-b-${SUFFIX}`;

let daemon: DaemonRig;
const ids = new Map<string, { uid: number; gid: number }>();

beforeAll(async () => {
  removeLinks(PREFIX);
  execFileSync('groupadd', [GROUP]);
  for (const user of [ALICE, BOB]) {
    execFileSync('useradd', ['--no-create-home', '--shell', '/usr/sbin/nologin', '--groups', GROUP, user]);
    const id = (flag: string): number => Number(execFileSync('id', [flag, user], { encoding: 'utf8' }).trim());
    ids.set(user, { uid: id('-u'), gid: id('-g') });
  }
  daemon = await startDaemon({
    env: {
      FIREDECK_BRIDGE: `${PREFIX}br0`,
      FIREDECK_CIDR: '10.213.91.0/24',
      FIREDECK_DEVICE_PREFIX: PREFIX,
      FIREDECK_GROUP: GROUP,
    },
  });
  // The rig's temp base is private (mkdtemp); on a host the run dir /run/firedeck is 0755 for the group to reach
  // the socket (0660, group GROUP).
  fs.chmodSync(path.dirname(daemon.runDir), 0o755);
});

afterAll(async () => {
  await daemon?.stop();
  removeLinks(PREFIX);
  for (const user of [ALICE, BOB]) quiet('userdel', [user]);
  quiet('groupdel', [GROUP]);
});

function quiet(cmd: string, args: string[]): void {
  try {
    execFileSync(cmd, args, { stdio: 'ignore' });
  } catch {
    // best effort: it may not exist
  }
}

/**
 * As `user` (its uid, primary and supplementary groups, a clean environment): connects to the socket, sends
 * `hello` as the first frame and then one request, and resolves with the first reply.
 */
function callAs(user: string, hello: unknown, request: unknown): Promise<Record<string, unknown>> {
  const { uid, gid } = ids.get(user)!;
  const script = `
    const socket = require('node:net').connect(process.env.SOCKET);
    let got = '';
    socket.on('connect', () => socket.write(process.env.HELLO + '\\n' + process.env.REQUEST + '\\n'));
    socket.on('data', (d) => {
      got += d;
      const nl = got.indexOf('\\n');
      if (nl >= 0) { process.stdout.write(got.slice(0, nl)); socket.destroy(); }
    });
    socket.on('error', (e) => { process.stderr.write(e.message); process.exitCode = 1; });`;
  const args = [`--reuid=${uid}`, `--regid=${gid}`, '--init-groups', '--', 'env', '-i', 'PATH=/usr/bin:/bin'];
  args.push(`SOCKET=${daemon.socketPath}`, `HELLO=${JSON.stringify(hello)}`, `REQUEST=${JSON.stringify(request)}`);
  args.push(process.execPath, '-e', script);
  return new Promise((resolve, reject) => {
    execFile('setpriv', args, { timeout: 60_000 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${user}: ${err.message} ${stderr}`));
      else resolve(JSON.parse(stdout) as Record<string, unknown>);
    });
  });
}

/** As `user`: `firedeckd dial-stdio` (the command the app runs over SSH) with `frames` on its stdin. */
function dialStdioAs(user: string, frames: unknown[]): Promise<string> {
  const { uid, gid } = ids.get(user)!;
  const args = [`--reuid=${uid}`, `--regid=${gid}`, '--init-groups', '--', 'env', '-i', 'PATH=/usr/bin:/bin'];
  args.push(daemon.firedeckdCommand, 'dial-stdio');
  return new Promise((resolve, reject) => {
    const child = execFile('setpriv', args, { timeout: 60_000 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${user}: ${err.message} ${stderr}`));
      else resolve(stdout);
    });
    child.stdin!.end(frames.map((f) => `${JSON.stringify(f)}\n`).join(''));
  });
}

function hello(user: string, uid: number): unknown {
  return { jsonrpc: '2.0', method: 'session.hello', params: { user, uid } };
}

function auditLog(): AuditEntry[] {
  const db = new Database(stateDbPath(daemon.stateDir), { readonly: true, fileMustExist: true });
  try {
    return new AuditLog(db).recent(100);
  } finally {
    db.close();
  }
}

describe('the caller the daemon records is the one the kernel names', () => {
  it('records a group member who claims to be root as themselves, and one who claims the other as themselves', async () => {
    const alice = ids.get(ALICE)!;
    const bob = ids.get(BOB)!;
    const gc = await callAs(ALICE, hello('root', 0), {
      jsonrpc: '2.0',
      id: 1,
      method: 'image.gc',
      params: { name: 'test' },
    });
    expect(gc).toMatchObject({ id: 1, result: { removed: [] } });
    const destroy = await callAs(BOB, hello(ALICE, alice.uid), {
      jsonrpc: '2.0',
      id: 2,
      method: 'vm.destroy',
      params: { id: 'vm-0000abcd' },
    });
    expect(destroy).toMatchObject({ id: 2, error: { data: { kind: 'not_found' } } });

    const entries = auditLog().map(({ user, uid, method, ok }) => ({ user, uid, method, ok }));
    expect(entries).toEqual([
      { user: BOB, uid: bob.uid, method: 'vm.destroy', ok: false },
      { user: ALICE, uid: alice.uid, method: 'image.gc', ok: true },
    ]);
    // The claims are noted in the daemon's log, under the name the kernel gave.
    expect(daemon.log()).toContain(`session.hello from ${ALICE} (uid ${alice.uid}, `);
    expect(daemon.log()).toMatch(new RegExp(`claims root \\(uid 0\\); recorded as ${ALICE}`));
    expect(daemon.log()).toMatch(new RegExp(`claims ${ALICE} \\(uid ${alice.uid}\\); recorded as ${BOB}`));
  });

  it('records who ran firedeckd dial-stdio, whatever hello its stdin carries after the one dial-stdio sends', async () => {
    const bob = ids.get(BOB)!;
    const out = await dialStdioAs(BOB, [
      hello('root', 0),
      { jsonrpc: '2.0', id: 3, method: 'vm.destroy', params: { id: 'vm-0000beef' } },
    ]);
    expect(JSON.parse(out.trim())).toMatchObject({ id: 3, error: { data: { kind: 'not_found' } } });
    expect(auditLog()[0]).toMatchObject({
      user: BOB,
      uid: bob.uid,
      method: 'vm.destroy',
      params: { id: 'vm-0000beef' },
    });
  });
});
