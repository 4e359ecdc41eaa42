import { execFile } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { guestSshArgs, startQemuGuest, type QemuGuest } from '../rig/qemu';
import { ensureTestImage, type TestImage } from '../rig/testImage';
import { makeTempDir, requireTool } from '../rig/tmp';

function ssh(keyPath: string, host: string, command: string): Promise<{ stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    execFile(
      '/usr/bin/ssh',
      [...guestSshArgs(keyPath, 'ConnectTimeout=20'), `firedeck@${host}`, command],
      { timeout: 60_000 },
      (err, stdout, stderr) =>
        err ? reject(new Error(`ssh ${command}: ${stderr || err.message}`)) : resolve({ stdout, stderr }),
    );
  });
}

function tcpConnect(host: string, port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host, port, timeout: 10_000 });
    s.once('data', (d) => {
      s.destroy();
      resolve(d.toString());
    });
    s.once('timeout', () => reject(new Error(`no banner from ${host}:${port}`)));
    s.once('error', reject);
  });
}

describe('rig: test image booted in QEMU (TCG)', () => {
  let image: TestImage;
  let guest: QemuGuest | undefined;
  let keyDir: string;
  let bootMs = 0;

  beforeAll(async () => {
    requireTool('/usr/bin/ssh', 'openssh-client');
    requireTool('/usr/bin/ssh-keygen', 'openssh-client');
    image = await ensureTestImage();
    keyDir = makeTempDir('guestkey');
    await new Promise<void>((resolve, reject) =>
      execFile('/usr/bin/ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', path.join(keyDir, 'id')], (e) =>
        e ? reject(e) : resolve(),
      ),
    );
    const t0 = Date.now();
    guest = await startQemuGuest({
      image,
      network: true,
      hostname: 'rig-guest',
      config: {
        vmId: 'vm-0123abcd',
        hostname: 'rig-guest',
        kind: 'cli',
        authorizedKeys: [fs.readFileSync(path.join(keyDir, 'id.pub'), 'utf8').trim()],
      },
    });
    await guest.waitForConsole(/^FIREDECK-READY sshd\r?$/m, 180_000);
    bootMs = Date.now() - t0;
    console.log(`test image booted to FIREDECK-READY sshd in ${bootMs} ms`);
  });

  afterAll(async () => {
    await guest?.stop();
    if (keyDir) fs.rmSync(keyDir, { recursive: true, force: true });
  });

  it('was built by the pipeline with a manifest naming its kernel', () => {
    expect(image.manifest.name).toBe('test');
    expect(image.manifest.kernel.release).toMatch(/amd64$/);
    expect(image.manifest.packages.some((p) => p.name === 'openssh-server')).toBe(true);
    expect(fs.statSync(image.rootfsPath).size).toBe(image.manifest.rootfs.sizeBytes);
  });

  it('prints the guest contract markers in order, with a per-VM host key', async () => {
    const text = guest!.consoleText();
    const vm = text.search(/^FIREDECK-READY vm\r?$/m);
    const hostKey = /^FIREDECK-HOSTKEY (ssh-ed25519) ([A-Za-z0-9+/=]+)\r?$/m.exec(text);
    const sshd = text.search(/^FIREDECK-READY sshd\r?$/m);
    expect(vm).toBeGreaterThanOrEqual(0);
    expect(hostKey).not.toBeNull();
    expect(hostKey!.index).toBeGreaterThan(vm);
    expect(sshd).toBeGreaterThan(hostKey!.index);
    // The same key is what sshd presents over the network.
    const scanned = await new Promise<string>((resolve, reject) =>
      execFile('/usr/bin/ssh-keyscan', ['-t', 'ed25519', guest!.network!.guestIp], (e, out) =>
        e ? reject(e) : resolve(out),
      ),
    );
    expect(scanned).toContain(hostKey![2]);
  });

  it('is reachable over its TAP: sshd banner and a key login delivered by the config drive', async () => {
    const net = guest!.network!;
    expect(await tcpConnect(net.guestIp, 22)).toMatch(/^SSH-2\.0-OpenSSH/);
    const { stdout } = await ssh(path.join(keyDir, 'id'), net.guestIp, 'id -u; hostname; cat /proc/cmdline');
    const [uid, hostname, cmdline] = stdout.trim().split('\n');
    expect(uid).toBe('1000');
    expect(hostname).toBe('rig-guest');
    expect(cmdline).toContain(`firedeck.vm=${guest!.vmId}`);
  });

  it('refuses a key that the config drive did not deliver', async () => {
    const other = makeTempDir('otherkey');
    try {
      await new Promise<void>((resolve, reject) =>
        execFile('/usr/bin/ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', path.join(other, 'id')], (e) =>
          e ? reject(e) : resolve(),
        ),
      );
      await expect(ssh(path.join(other, 'id'), guest!.network!.guestIp, 'true')).rejects.toThrow(/Permission denied/);
    } finally {
      fs.rmSync(other, { recursive: true, force: true });
    }
  });

  it('gives a root shell on the serial console', async () => {
    const token = `rig-${Date.now()}`;
    guest!.writeConsole(`echo "${token}-$(id -u)"\n`);
    await guest!.waitForConsole(new RegExp(`${token}-0`), 30_000);
  });

  it('floods its console on request (for log-cap tests), over ssh and on the console shell', async () => {
    await ssh(path.join(keyDir, 'id'), guest!.network!.guestIp, 'firedeck-flood 3000 > /dev/ttyS0');
    await guest!.waitForConsole(/FIREDECK-FLOOD-DONE 3000/, 60_000);
    expect(guest!.consoleText()).toMatch(/FIREDECK-FLOOD 2999 x+/);
    guest!.writeConsole('firedeck-flood 500\n');
    await guest!.waitForConsole(/FIREDECK-FLOOD-DONE 500/, 60_000);
  });

  it('powers off on the ACPI power button (QMP system_powerdown)', async () => {
    const t0 = Date.now();
    const result = await guest!.powerdown(60_000);
    expect(result.code).toBe(0);
    console.log(`powered off ${Date.now() - t0} ms after system_powerdown`);
    expect(fs.readFileSync(guest!.serialLogPath, 'utf8')).toContain('FIREDECK-READY sshd');
  });
});
