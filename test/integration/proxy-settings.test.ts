import { execFile, execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Vm } from '../../src/shared/protocol/vm';
import type { DaemonRig } from '../rig/daemon';
import { startSuiteDaemon, stopSuiteDaemon, subscribeEvents, type EventLog } from './daemon-helpers';

/**
 * The proxy browser VMs use (issue 12, vault): set by root through `firedeckd proxy set` (JSON on stdin, so the
 * password is in no argv), sealed in the vault, shown redacted everywhere, and unsealed only onto the config drive
 * of a browser VM made afterwards, never a CLI VM's. A real member of the socket's group may read the redacted
 * settings but not change them. The daemon is root, real; the VMs are made without booting (their config drives
 * are what is checked, read back with debugfs as the guest's guest-setup reads them).
 */

const PREFIX = 'fdpx';
const SUFFIX = crypto.randomBytes(3).toString('hex');
const GROUP = `fdpx-grp-${SUFFIX}`;
const MEMBER = `fdpx-m-${SUFFIX}`;
/** Drawn per run: a constant would be a constant password in the repo, and could not show a leak for sure. */
const PASSWORD = crypto.randomBytes(12).toString('base64url');
const PROXY = `http://support:${PASSWORD}@proxy.firedeck.invalid:3128`;

let daemon: DaemonRig;
let events: EventLog;

beforeAll(async () => {
  execFileSync('groupadd', [GROUP]);
  execFileSync('useradd', ['--no-create-home', '--shell', '/usr/sbin/nologin', '--groups', GROUP, MEMBER]);
  daemon = await startSuiteDaemon(PREFIX, '10.213.105.0/24', { FIREDECK_GROUP: GROUP });
  fs.chmodSync(path.dirname(daemon.runDir), 0o755);
  events = await subscribeEvents(daemon.socketPath);
});

afterAll(async () => {
  events?.close();
  await stopSuiteDaemon(daemon, PREFIX);
  for (const [cmd, arg] of [
    ['userdel', MEMBER],
    ['groupdel', GROUP],
  ] as const) {
    try {
      execFileSync(cmd, [arg], { stdio: 'ignore' });
    } catch {
      // best effort: it may not exist
    }
  }
});

/** Runs this daemon's `firedeckd` CLI (as root, or as `user` with its groups), `stdin` on its stdin. */
function cli(args: string[], stdin = '', user?: string): Promise<{ code: number; stdout: string; stderr: string }> {
  const [cmd, argv] = user
    ? [
        'setpriv',
        [
          '--reuid',
          user,
          '--regid',
          user,
          '--init-groups',
          '--',
          'sh',
          '-c',
          `${daemon.firedeckdCommand} "$@"`,
          'firedeckd',
          ...args,
        ],
      ]
    : ['sh', ['-c', `${daemon.firedeckdCommand} "$@"`, 'firedeckd', ...args]];
  return new Promise((resolve) => {
    const child = execFile(cmd, argv, { timeout: 60_000 }, (err, stdout, stderr) =>
      resolve({ code: err ? ((err as { code?: number }).code ?? -1) : 0, stdout, stderr }),
    );
    child.stdin!.end(stdin);
  });
}

/** config.json on a VM's config drive, as the guest reads it. */
function configDrive(vm: Vm): Record<string, unknown> {
  const img = path.join(daemon.stateDir, 'vms', vm.id, 'config.img');
  const text = execFileSync('debugfs', ['-R', 'cat /config.json', img], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'ignore'],
  });
  return JSON.parse(text) as Record<string, unknown>;
}

describe('browser VMs’ proxy: root sets it, browser VMs get it, nothing else shows its password', () => {
  it('is set from stdin and answered redacted', async () => {
    const none = await cli(['proxy', 'show']);
    expect(none).toMatchObject({ code: 0, stdout: 'proxy: none (browser VMs connect directly)\n' });

    const set = await cli(['proxy', 'set'], JSON.stringify({ https: PROXY, noProxy: ['.corp', '10.0.0.0/8'] }));
    expect(set.stderr).toBe('');
    expect(set.code).toBe(0);
    expect(set.stdout).toContain('https:    http://***@proxy.firedeck.invalid:3128');
    const shown = JSON.parse((await cli(['proxy', 'show', '--json'])).stdout) as unknown;
    expect(shown).toEqual({
      configured: true,
      http: null,
      https: 'http://***@proxy.firedeck.invalid:3128',
      noProxy: ['.corp', '10.0.0.0/8'],
    });
  });

  it('refuses a URL in argv and a malformed one, naming the field but never the value', async () => {
    const argv = await cli(['proxy', 'set', PROXY]);
    expect(argv.code).toBe(1);
    expect(argv.stderr).toMatch(
      /proxy set: unexpected argument 1\nhint: proxy set takes its settings as JSON on stdin/,
    );
    const bad = await cli(['proxy', 'set'], JSON.stringify({ https: `ftp://u:${PASSWORD}@x:21` }));
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/proxy https is not a proxy URL/);
    expect(argv.stderr + bad.stderr).not.toContain(PASSWORD);
    // Still the settings set before.
    expect((await cli(['proxy', 'show'])).stdout).toContain('http://***@proxy.firedeck.invalid:3128');
  });

  it('goes onto a new browser VM’s config drive, password and all, and onto no CLI VM’s', async () => {
    const browser = await daemon.call('vm.create', {
      name: 'px-browser',
      kind: 'browser',
      owner: 'ops',
      image: 'test',
      start: false,
    });
    const cliVm = await daemon.call('vm.create', {
      name: 'px-cli',
      kind: 'cli',
      owner: 'ops',
      image: 'test',
      start: false,
    });
    expect(configDrive(browser).proxy).toEqual({ https: PROXY, noProxy: '.corp,10.0.0.0/8' });
    expect(configDrive(cliVm)).not.toHaveProperty('proxy');
  });

  it('a member of the socket’s group reads it redacted but may neither set nor clear it', async () => {
    const show = await cli(['proxy', 'show'], '', MEMBER);
    expect(show.code).toBe(0);
    expect(show.stdout).toContain('http://***@proxy.firedeck.invalid:3128');
    const set = await cli(['proxy', 'set'], JSON.stringify({ http: 'http://elsewhere.invalid:8080' }), MEMBER);
    expect(set.code).toBe(1);
    expect(set.stderr).toMatch(new RegExp(`Only root may set the browser VMs' proxy \\(you are ${MEMBER}\\)`));
    const clear = await cli(['proxy', 'clear'], '', MEMBER);
    expect(clear.code).toBe(1);
    expect(clear.stderr).toMatch(/Only root may clear/);
    expect((await cli(['proxy', 'show'])).stdout).toContain('https:    http://***@proxy.firedeck.invalid:3128');
  });

  it('is cleared by root, and the next browser VM goes without', async () => {
    const cleared = await cli(['proxy', 'clear']);
    expect(cleared).toMatchObject({ code: 0, stdout: 'proxy: none (browser VMs connect directly)\n' });
    const next = await daemon.call('vm.create', {
      name: 'px-browser-2',
      kind: 'browser',
      owner: 'ops',
      image: 'test',
      start: false,
    });
    expect(configDrive(next)).not.toHaveProperty('proxy');
  });

  it('left its password in no daemon log line, event or audit row, and the store holds it sealed only', async () => {
    const audit = await cli(['audit', '--json', '--method', 'proxy.set']);
    expect(audit.code).toBe(0);
    const rows = audit.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { params: unknown; user: string; ok: boolean });
    expect(rows.map((r) => [r.user, r.ok])).toEqual(
      expect.arrayContaining([
        ['root', true],
        [MEMBER, false],
      ]),
    );
    expect(JSON.stringify(rows)).toContain('http://***@proxy.firedeck.invalid:3128');
    const everything = [daemon.log(), JSON.stringify(events.events), audit.stdout].join('\n');
    expect(everything).not.toContain(PASSWORD);
    // The state dir, store included, holds it nowhere in the clear (the browser VM's config drive aside).
    const store = ['firedeck.db', 'firedeck.db-wal'].map((f) => path.join(daemon.stateDir, f)).filter(fs.existsSync);
    expect(store.length).toBeGreaterThan(0);
    for (const file of store) expect(fs.readFileSync(file).includes(Buffer.from(PASSWORD)), file).toBe(false);
  });
});
