import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { buildConfigDrive, ensureGuestKey, guestConfigFor, kernelCommandLine } from './guestConfig';

/** Tests draw their passwords at random (build/scripts/secret-scan.mjs flags constant ones). */
const vncPassword = randomBytes(6).toString('base64url');

let dir: string;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'firedeck-guestcfg-'));
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

describe('kernelCommandLine', () => {
  it('follows the guest contract', () => {
    expect(
      kernelCommandLine('vm-00aa', 'alice-cli', {
        address: '10.213.0.5',
        gateway: '10.213.0.1',
        netmask: '255.255.255.0',
      }),
    ).toBe(
      'console=ttyS0 root=/dev/vda rw panic=-1 ip=10.213.0.5::10.213.0.1:255.255.255.0:alice-cli:eth0:off firedeck.vm=vm-00aa',
    );
  });
});

describe('config drive', () => {
  it('is an ext4 image labelled FDCONFIG holding config.json, built without mounting', async () => {
    const target = path.join(dir, 'config.img');
    const cfg = guestConfigFor({
      vmId: 'vm-00aa',
      hostname: 'alice-cli',
      kind: 'cli',
      sessionId: 's-1',
      authorizedKeys: ['ssh-ed25519 AAAA host'],
    });
    await buildConfigDrive(target, cfg);
    expect(execFileSync('blkid', ['-o', 'value', '-s', 'LABEL', target]).toString().trim()).toBe('FDCONFIG');
    const json = execFileSync('debugfs', ['-R', 'cat /config.json', target], {
      stdio: ['ignore', 'pipe', 'ignore'],
    }).toString();
    expect(JSON.parse(json)).toEqual({
      vmId: 'vm-00aa',
      hostname: 'alice-cli',
      kind: 'cli',
      sessionId: 's-1',
      authorizedKeys: ['ssh-ed25519 AAAA host'],
    });
    expect(fs.existsSync(`${target}.tmp`)).toBe(false);
  });

  it('holds config.json (VNC password, agent token) as 0600 root:root, in a root directory nobody else writes', async () => {
    const target = path.join(dir, 'browser.img');
    const cfg = guestConfigFor({
      vmId: 'vm-00bb',
      hostname: 'login',
      kind: 'browser',
      sessionId: null,
      authorizedKeys: [],
      secrets: { vncPassword, agentToken: 't' },
    });
    // A permissive umask must not widen what the guest sees.
    const umask = process.umask(0);
    try {
      await buildConfigDrive(target, cfg);
    } finally {
      process.umask(umask);
    }
    const stat = (what: string): { mode: string; user: number; group: number } => {
      const out = execFileSync('debugfs', ['-R', `stat ${what}`, target], {
        stdio: ['ignore', 'pipe', 'ignore'],
      }).toString();
      const m = /Mode:\s+(\d+).*\n.*\nUser:\s+(\d+)\s+Group:\s+(\d+)/.exec(out);
      expect(m, out).not.toBeNull();
      return { mode: m![1]!, user: Number(m![2]), group: Number(m![3]) };
    };
    expect(stat('/config.json')).toEqual({ mode: '0600', user: 0, group: 0 });
    expect(stat('/')).toEqual({ mode: '0755', user: 0, group: 0 });
  });

  it('puts browser secrets only on browser drives and rejects unknown fields', async () => {
    const cli = guestConfigFor({
      vmId: 'v',
      hostname: 'h',
      kind: 'cli',
      sessionId: null,
      authorizedKeys: [],
      secrets: { vncPassword },
    });
    expect(cli).toEqual({ vmId: 'v', hostname: 'h', kind: 'cli' });
    const browser = guestConfigFor({
      vmId: 'v',
      hostname: 'h',
      kind: 'browser',
      sessionId: null,
      authorizedKeys: [],
      secrets: { vncPassword, agentToken: 't' },
    });
    expect(browser).toMatchObject({ vncPassword, agentToken: 't' });
    await expect(
      buildConfigDrive(path.join(dir, 'bad.img'), { ...cli, extra: 1 } as unknown as typeof cli),
    ).rejects.toThrow();
    expect(fs.existsSync(path.join(dir, 'bad.img'))).toBe(false);
  });
});

describe('guest key', () => {
  it('is generated once, private half 0600', async () => {
    const first = await ensureGuestKey(path.join(dir, 'keys'));
    expect(first.publicKey).toMatch(/^ssh-ed25519 /);
    expect(fs.statSync(first.privateKeyPath).mode & 0o777).toBe(0o600);
    const again = await ensureGuestKey(path.join(dir, 'keys'));
    expect(again.publicKey).toBe(first.publicKey);
  });

  it('survives concurrent first calls with one whole key pair', async () => {
    const keys = await Promise.all([1, 2, 3, 4].map(() => ensureGuestKey(path.join(dir, 'race'))));
    const onDisk = fs.readFileSync(path.join(dir, 'race', 'guest_ed25519.pub'), 'utf8').trim();
    expect(new Set(keys.map((k) => k.publicKey))).toEqual(new Set([onDisk]));
    expect(fs.readdirSync(path.join(dir, 'race')).sort()).toEqual(['guest_ed25519', 'guest_ed25519.pub']);
  });
});

describe('guestConfigFor: the proxy', () => {
  const proxy = { http: null, https: `http://u:${vncPassword}@proxy.corp:3128`, noProxy: ['.corp', '10.0.0.0/8'] };
  const base = { vmId: 'vm-00cc', hostname: 'h', sessionId: null, authorizedKeys: [] };

  it('goes to browser VMs, with the no-proxy list as one comma-separated value', () => {
    expect(guestConfigFor({ ...base, kind: 'browser', proxy }).proxy).toEqual({
      https: proxy.https,
      noProxy: '.corp,10.0.0.0/8',
    });
  });

  it('never to CLI VMs, and not at all when nothing is set', () => {
    expect(guestConfigFor({ ...base, kind: 'cli', proxy })).not.toHaveProperty('proxy');
    expect(
      guestConfigFor({ ...base, kind: 'browser', proxy: { http: null, https: null, noProxy: [] } }),
    ).not.toHaveProperty('proxy');
  });
});
