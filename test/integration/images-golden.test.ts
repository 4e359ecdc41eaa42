import { execFile } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defaultCacheDir } from '../../host-daemon/src/images/builder';
import { ImageCatalog, type ResolvedImage } from '../../host-daemon/src/images/catalog';
import { loadRecipe, recipesRoot } from '../../host-daemon/src/images/recipe';
import { ImageService } from '../../host-daemon/src/images/service';
import { guestSshArgs, startQemuGuest, type QemuGuest } from '../rig/qemu';
import { makeTempDir, requireTool } from '../rig/tmp';

/**
 * The slow suite: builds the `cli` and `browser` golden images with their checks and boot tests (or reuses
 * the versions cached under ${FIREDECK_CACHE_DIR}/golden by recipe hash), then boots each on a TAP with a
 * config drive and checks the guest contract from outside.
 */
const catalog = new ImageCatalog(path.join(defaultCacheDir(), 'golden'));
const service = new ImageService({
  catalog,
  emit: (e) => {
    if (e.type === 'image.build' && e.line === null)
      process.stderr.write(`[${e.recipe} image] ${e.step} ${e.status}\n`);
  },
});

async function goldenImage(name: 'cli' | 'browser'): Promise<ResolvedImage> {
  const t0 = Date.now();
  const result = await service.build({ recipe: name });
  console.log(
    `${name} image ${result.reused ? 'reused' : 'built'} (${result.image.version}) in ${((Date.now() - t0) / 1000).toFixed(1)} s`,
  );
  return catalog.resolve(`${name}@${result.image.version}`);
}

/** A CLI's first start under TCG loads a large Node bundle: on a loaded two-core machine that takes minutes. */
const CLI_START_TIMEOUT_MS = 300_000;

function run(file: string, args: string[], timeoutMs = 120_000): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(file, args, { timeout: timeoutMs }, (err, stdout, stderr) => {
      if (!err) return resolve(stdout);
      const why = err.killed ? `timed out after ${timeoutMs / 1000} s` : stderr || err.message;
      reject(new Error(`${file} ${args.join(' ')}: ${why}`));
    });
  });
}

function httpGet(url: string, token?: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.get(
      url,
      { headers: token ? { authorization: `Bearer ${token}` } : {}, timeout: 20_000 },
      (res) => {
        let body = '';
        res.on('data', (d: Buffer) => (body += d.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      },
    );
    req.once('timeout', () => req.destroy(new Error(`GET ${url} timed out`)));
    req.once('error', reject);
  });
}

function vncAuth(host: string, port: number, password: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host, port });
    let buf = Buffer.alloc(0);
    let stage = 0;
    s.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      if (stage === 0 && buf.length >= 12) {
        if (buf.subarray(0, 12).toString() !== 'RFB 003.008\n')
          reject(new Error(`unexpected banner ${buf.subarray(0, 12).toString()}`));
        buf = buf.subarray(12);
        s.write('RFB 003.008\n');
        stage = 1;
      }
      if (stage === 1 && buf.length >= 1 && buf.length >= 1 + buf[0]!) {
        const types = [...buf.subarray(1, 1 + buf[0]!)];
        buf = buf.subarray(1 + buf[0]!);
        if (!types.includes(2)) reject(new Error(`VncAuth not offered: ${types.join(',')}`));
        s.write(Buffer.from([2]));
        stage = 2;
      }
      if (stage === 2 && buf.length >= 16) {
        const key = Buffer.alloc(8);
        Buffer.from(password, 'latin1').copy(key, 0, 0, 8);
        for (let i = 0; i < 8; i++) {
          let r = 0;
          for (let bit = 0; bit < 8; bit++) r |= ((key[i]! >> bit) & 1) << (7 - bit);
          key[i] = r;
        }
        const c = crypto.createCipheriv('des-ede3-ecb', Buffer.concat([key, key, key]), null);
        c.setAutoPadding(false);
        s.write(Buffer.concat([c.update(buf.subarray(0, 16)), c.final()]));
        buf = buf.subarray(16);
        stage = 3;
      }
      if (stage === 3 && buf.length >= 4) {
        resolve(buf.readUInt32BE(0));
        s.destroy();
      }
    });
    s.once('error', reject);
  });
}

describe('golden image: cli', () => {
  let image: ResolvedImage;
  let guest: QemuGuest | undefined;
  let keyDir: string;

  beforeAll(async () => {
    requireTool('/usr/bin/ssh', 'openssh-client');
    image = await goldenImage('cli');
    keyDir = makeTempDir('cli-key');
    await run('/usr/bin/ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', path.join(keyDir, 'id')]);
    const t0 = Date.now();
    guest = await startQemuGuest({
      image,
      network: true,
      memoryMiB: 1024,
      cpus: 2,
      hostname: 'cli-guest',
      vmId: 'vm-c11c11c1',
      config: {
        vmId: 'vm-c11c11c1',
        hostname: 'cli-guest',
        kind: 'cli',
        sessionId: 'sess-1234',
        proxy: { http: 'http://10.213.0.1:3128', https: 'http://10.213.0.1:3128', noProxy: 'localhost' },
        authorizedKeys: [fs.readFileSync(path.join(keyDir, 'id.pub'), 'utf8').trim()],
      },
    });
    await guest.waitForConsole(/^FIREDECK-READY sshd\r?$/m, 300_000);
    console.log(`cli image booted to FIREDECK-READY sshd in ${Date.now() - t0} ms`);
  });

  afterAll(async () => {
    await guest?.stop();
    if (keyDir) fs.rmSync(keyDir, { recursive: true, force: true });
  });

  const ssh = (command: string, timeoutMs?: number): Promise<string> =>
    run(
      '/usr/bin/ssh',
      [...guestSshArgs(path.join(keyDir, 'id')), `firedeck@${guest!.network!.guestIp}`, command],
      timeoutMs,
    );

  it('passed its checks and boot test when it was built', () => {
    const m = image.manifest;
    expect(m.bootTest?.markers.sort()).toEqual(['sshd', 'vm']);
    expect(m.packages.find((p) => p.name === 'nodejs')?.version).toMatch(/^20\./);
    // The recipe pins each CLI; the image holds exactly those versions.
    const pinned = loadRecipe(path.join(recipesRoot(), 'cli')).recipe.npmGlobals;
    expect(pinned.every((spec) => /@\d+\.\d+\.\d+$/.test(spec))).toBe(true);
    expect(m.npmGlobals.map((p) => `${p.name}@${p.version}`).sort()).toEqual([...pinned].sort());
    expect(m.npmGlobals.map((p) => p.name).sort()).toEqual([
      '@anthropic-ai/claude-code',
      '@google/gemini-cli',
      '@openai/codex',
    ]);
    // With the integrity npm checked each tarball against, platform packages included.
    for (const p of [...m.npmGlobals, ...(m.npmDependencies ?? [])])
      expect(p.integrity).toMatch(/^sha512-[A-Za-z0-9+/]+=*$/);
    expect(m.npmDependencies?.map((p) => p.name)).toContain('@openai/codex-linux-x64');
  });

  it('prints a per-VM host key that sshd presents', async () => {
    const key = /^FIREDECK-HOSTKEY (ssh-ed25519) (\S+)\r?$/m.exec(guest!.consoleText());
    expect(key).not.toBeNull();
    expect(await run('/usr/bin/ssh-keyscan', ['-t', 'ed25519', guest!.network!.guestIp])).toContain(key![2]);
  });

  it(
    'runs the three CLIs for user firedeck, with the proxy and session from the config drive',
    async () => {
      expect((await ssh('id -u; node --version')).trim().split('\n')).toEqual([
        '1000',
        expect.stringMatching(/^v20\./),
      ]);
      const version = async (cli: string): Promise<string> => {
        const t0 = Date.now();
        const out = await ssh(`${cli} --version 2>&1`, CLI_START_TIMEOUT_MS);
        console.log(`${cli} --version in the guest: ${Date.now() - t0} ms`);
        return out;
      };
      expect(await version('codex')).toMatch(/codex-cli \d/);
      expect(await version('claude')).toMatch(/Claude Code/);
      expect(await version('gemini')).toMatch(/^\d+\.\d+/);
      // Login shells get the proxy from the config drive (profile.d reads /run/firedeck/proxy.env).
      expect(await ssh(`bash -lc 'echo proxy=$https_proxy'`)).toMatch(/proxy=http:\/\/10\.213\.0\.1:3128/);
      expect((await ssh('cat /run/firedeck/session-id')).trim()).toBe('sess-1234');
    },
    4 * CLI_START_TIMEOUT_MS,
  );

  it('powers off on the ACPI power button', async () => {
    expect((await guest!.powerdown(120_000)).code).toBe(0);
  });
});

describe('golden image: browser', () => {
  let image: ResolvedImage;
  let guest: QemuGuest | undefined;
  const vncPassword = crypto.randomBytes(6).toString('base64url').slice(0, 8);
  const agentToken = crypto.randomBytes(24).toString('hex');

  beforeAll(async () => {
    image = await goldenImage('browser');
    const t0 = Date.now();
    guest = await startQemuGuest({
      image,
      network: true,
      memoryMiB: 2048,
      cpus: 2,
      hostname: 'browser-guest',
      vmId: 'vm-b0b0b0b0',
      config: { vmId: 'vm-b0b0b0b0', hostname: 'browser-guest', kind: 'browser', vncPassword, agentToken },
    });
    await guest.waitForConsole(/^FIREDECK-READY vnc\r?$/m, 600_000);
    await guest.waitForConsole(/^FIREDECK-READY agent\r?$/m, 600_000);
    console.log(`browser image booted to vnc + agent markers in ${Date.now() - t0} ms`);
  });

  afterAll(async () => {
    await guest?.stop();
  });

  it('passed its checks and boot test when it was built', () => {
    expect(image.manifest.bootTest?.markers.sort()).toEqual(['agent', 'vm', 'vnc']);
    expect(image.manifest.packages.some((p) => p.name === 'firefox-esr')).toBe(true);
  });

  it('serves the agent health to the bearer of the config-drive token only', async () => {
    const url = `http://${guest!.network!.guestIp}:8390/health`;
    const ok = await httpGet(url, agentToken);
    expect(ok.status).toBe(200);
    expect(JSON.parse(ok.body)).toMatchObject({ status: 'ok', vmId: 'vm-b0b0b0b0' });
    expect((await httpGet(url)).status).toBe(401);
    expect((await httpGet(url, `${agentToken}x`)).status).toBe(401);
  });

  it('serves VNC on the VM address with the per-VM password', async () => {
    const host = guest!.network!.guestIp;
    expect(await vncAuth(host, 5900, vncPassword)).toBe(0);
    expect(await vncAuth(host, 5900, `${vncPassword[0] === 'a' ? 'b' : 'a'}${vncPassword.slice(1)}`)).not.toBe(0);
  });

  it('powers off on the ACPI power button', async () => {
    expect((await guest!.powerdown(180_000)).code).toBe(0);
  });
});
