import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { HostStatus } from '../../src/shared/app/contract';
import { DaemonInfo } from '../../src/shared/protocol/daemon';
import { DoctorReport } from '../../src/shared/protocol/doctor';
import { FIREDECK_VERSION } from '../../src/shared/version';
import { HostConnection } from '../../src/main/hosts/hostConnection';
import { DaemonClient } from '../../src/main/rpc/daemonClient';
import { fingerprintOf } from '../../src/main/ssh/hostKey';
import { SshTransport, type SshTarget } from '../../src/main/ssh/sshTransport';
import { guestSshArgs, startQemuGuest, type QemuGuest } from '../rig/qemu';
import { ensureTestImage } from '../rig/testImage';
import { makeTempDir, requireTool } from '../rig/tmp';
import { REPO_ROOT } from '../rig/daemon';

/**
 * The daemon package from `npm run package:daemon`, installed the way an admin would into a fresh Debian 13 host
 * (images/host: systemd, sshd, an admin with sudo, no Firedeck) booted once in QEMU on this suite's own network
 * range. Everything after the boot goes through the guest's sshd as that admin.
 */
const NETWORK = { thirdOctets: [75, 76, 77, 78], devicePrefix: 'fdp0' };
/** Inside the guest: the daemon's own bridge and subnet, set through its config file. */
const GUEST_BRIDGE = 'fdp1br0';
const GUEST_CIDR = '10.213.79.0/24';
const HOSTNAME = 'fresh-host';
const BOOT_TIMEOUT_MS = 600_000;

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

let work: string;
let deb: string;
let tarball: string;
let guest: QemuGuest | undefined;
let keyPath: string;
let hostKey: { key: string; fingerprint: string };
const transports: SshTransport[] = [];

/** Runs a command in the guest as the admin over ssh; never rejects on a non-zero exit. */
function ssh(command: string, input?: Buffer | string, timeoutMs = 300_000): Promise<Result> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      '/usr/bin/ssh',
      [...guestSshArgs(keyPath, 'ConnectTimeout=30'), `admin@${guest!.network!.guestIp}`, command],
      { stdio: ['pipe', 'pipe', 'pipe'] },
    );
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('error', reject);
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? -1, stdout, stderr });
    });
    child.stdin.end(input);
  });
}

async function sshOk(command: string, input?: Buffer | string): Promise<string> {
  const r = await ssh(command, input);
  if (r.code !== 0) throw new Error(`guest: ${command} exited ${r.code}\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}

/**
 * Restarts firedeckd and waits for the journal to show what the new daemon did: the serving line, or an error.
 * The journal cursor is taken first, so only lines of this start count.
 */
async function restartAndAwait(pattern: string): Promise<string> {
  const cursor = await journalCursor();
  // A unit that hit its start limit (a bad config restarts it a few times) refuses a restart until reset.
  await sshOk('sudo systemctl reset-failed firedeckd; sudo systemctl restart firedeckd');
  return awaitJournal(pattern, cursor);
}

/**
 * The first line of firedeckd's journal after `cursor` (or from the start) that matches: journalctl follows, grep
 * takes the line, and journalctl is ended at once rather than at its next write.
 */
async function awaitJournal(pattern: string, cursor: string | null): Promise<string> {
  const from = cursor === null ? '-n all' : `--after-cursor=${shellQuote(cursor)}`;
  const script = `journalctl -u firedeckd ${from} -f -o cat | { grep -m1 -E "$1"; s=$?; pkill -P $$ -x journalctl; exit $s; }`;
  return sshOk(`sudo timeout 180 sh -c ${shellQuote(script)} sh ${shellQuote(pattern)}`);
}

async function journalCursor(): Promise<string> {
  return (await sshOk("sudo journalctl -u firedeckd -n 0 --show-cursor | sed -n 's/^-- cursor: //p'")).trim();
}

function shellQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

function sshTarget(): SshTarget {
  return {
    address: guest!.network!.guestIp,
    port: 22,
    user: 'admin',
    auth: { type: 'keyFile', path: keyPath },
    pinned: hostKey,
    keepaliveIntervalMs: 5000,
    keepaliveCountMax: 3,
  };
}

beforeAll(async () => {
  requireTool('/usr/bin/ssh', 'openssh-client');
  requireTool('/usr/bin/dpkg-deb', 'dpkg');
  work = makeTempDir('daemon-package');
  execFileSync(process.execPath, [path.join(REPO_ROOT, 'host-daemon/packaging/build-package.mjs'), '--out', work], {
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  deb = path.join(work, fs.readdirSync(work).find((f) => f.endsWith('.deb'))!);
  tarball = path.join(work, fs.readdirSync(work).find((f) => f.endsWith('.tar.gz'))!);
  console.log(
    `package sizes: ${path.basename(deb)} ${(fs.statSync(deb).size / 1024).toFixed(0)} KiB, ${path.basename(tarball)} ${(fs.statSync(tarball).size / 1024).toFixed(0)} KiB`,
  );

  const image = await ensureTestImage({ recipeDir: path.join(REPO_ROOT, 'images/host') });
  keyPath = path.join(work, 'admin_ed25519');
  execFileSync('/usr/bin/ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', keyPath]);
  const t0 = Date.now();
  guest = await startQemuGuest({
    image,
    memoryMiB: 1024,
    cpus: 2,
    network: NETWORK,
    hostname: HOSTNAME,
    config: { hostname: HOSTNAME, authorizedKeys: [fs.readFileSync(`${keyPath}.pub`, 'utf8').trim()] },
  });
  await guest.waitForConsole(/^FIREDECK-READY sshd\r?$/m, BOOT_TIMEOUT_MS);
  console.log(`fresh host booted to sshd in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  const announced = /^FIREDECK-HOSTKEY ssh-ed25519 ([A-Za-z0-9+/=]+)\r?$/m.exec(guest.consoleText())!;
  const blob = Buffer.from(announced[1]!, 'base64');
  hostKey = { key: blob.toString('base64'), fingerprint: fingerprintOf(blob) };
});

afterAll(async () => {
  for (const t of transports) t.close();
  await guest?.stop();
  if (work) fs.rmSync(work, { recursive: true, force: true });
});

describe('the daemon package', () => {
  it('declares what it needs and ships one tree, with the native module built for this Node', () => {
    const field = (name: string): string => execFileSync('dpkg-deb', ['-f', deb, name], { encoding: 'utf8' }).trim();
    expect(field('Package')).toBe('firedeckd');
    expect(field('Version')).toBe(FIREDECK_VERSION);
    const major = process.versions.node.split('.')[0]!;
    expect(field('Depends').split(', ')).toEqual(
      expect.arrayContaining([
        `nodejs (>= ${major})`,
        `nodejs (<< ${Number(major) + 1})`,
        'qemu-system-x86 | firecracker',
        'e2fsprogs',
        'iproute2',
        'nftables',
        'openssh-client',
      ]),
    );
    expect(execFileSync('dpkg-deb', ['-I', deb, 'conffiles'], { encoding: 'utf8' })).toBe(
      '/etc/firedeck/firedeckd.conf\n',
    );
    const listing = execFileSync('dpkg-deb', ['-c', deb], { encoding: 'utf8' })
      .trim()
      .split('\n')
      .map((l) => l.split(/\s+/));
    const byPath = new Map(listing.map((cols) => [cols[5]!.replace(/^\.\//, '/'), cols]));
    expect(byPath.get('/usr/bin/firedeckd')?.slice(5)).toEqual([
      './usr/bin/firedeckd',
      '->',
      '../lib/firedeck/firedeckd.cjs',
    ]);
    for (const [file, mode] of [
      ['/usr/lib/firedeck/firedeckd.cjs', '-rwxr-xr-x'],
      ['/usr/lib/firedeck/host-setup', '-rwxr-xr-x'],
      ['/usr/lib/firedeck/peercred.node', '-rwxr-xr-x'],
      ['/usr/lib/firedeck/node_modules/better-sqlite3/build/Release/better_sqlite3.node', '-rwxr-xr-x'],
      ['/usr/lib/systemd/system/firedeckd.service', '-rw-r--r--'],
      ['/etc/firedeck/firedeckd.conf', '-rw-r--r--'],
      ['/usr/lib/firedeck/images/cli/recipe.json', '-rw-r--r--'],
    ] as const) {
      expect(byPath.get(file)?.slice(0, 2), file).toEqual([mode, 'root/root']);
    }
    const paths = [...byPath.keys()];
    // Only what runs: no test-only recipe, no C sources, build intermediates or type declarations.
    expect(paths.filter((p) => /images\/host\/|\/(deps|src|obj\.target)\/|\.d\.ts$|test_extension/.test(p))).toEqual(
      [],
    );
    // The tarball is the same tree.
    const tarPaths = execFileSync('tar', ['-tzf', tarball], { encoding: 'utf8' })
      .trim()
      .split('\n')
      .map((p) => `/${p.replace(/\/$/, '')}`);
    expect(tarPaths.sort()).toEqual(
      paths
        .filter((p) => p !== '/')
        .map((p) => p.replace(/\/$/, ''))
        .sort(),
    );
  });
});

/** Each step runs commands in a TCG guest, where one start of Node alone takes seconds. */
const GUEST_STEP_TIMEOUT_MS = 300_000;

describe('installed into a fresh Debian host over its sshd', { timeout: GUEST_STEP_TIMEOUT_MS }, () => {
  it('is a host with sshd and nothing of Firedeck before the install', async () => {
    expect((await sshOk('hostname; id -un; sudo -n true && echo sudo-ok')).trim().split('\n')).toEqual([
      HOSTNAME,
      'admin',
      'sudo-ok',
    ]);
    expect((await ssh('command -v firedeckd || getent group firedeck')).code).not.toBe(0);
  });

  it('installs with apt-get from the uploaded .deb, its dependencies found already installed', async () => {
    await sshOk('cat > /tmp/firedeckd.deb', fs.readFileSync(deb));
    const r = await ssh(
      'sudo DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends /tmp/firedeckd.deb',
    );
    expect(r.code, `${r.stdout}\n${r.stderr}`).toBe(0);
    expect(r.stdout).toContain('created the group firedeck');
    // Firecracker's jail user: a system account without a login shell.
    expect((await sshOk('getent passwd firedeck-fc')).trim()).toMatch(
      /^firedeck-fc:x:\d{3}:\d+::\/nonexistent:\/usr\/sbin\/nologin$/,
    );
    expect((await sshOk("dpkg-query -W -f '${Status} ${Version}' firedeckd")).trim()).toBe(
      `install ok installed ${FIREDECK_VERSION}`,
    );
  });

  it('runs under systemd: active, KillMode=process, restart on failure, the group, dirs and socket modes', async () => {
    // The service is started by the postinst; its socket exists once the journal says it serves.
    await awaitJournal('serving /run/firedeck/firedeckd.sock', null);
    expect((await sshOk('systemctl is-active firedeckd; systemctl is-enabled firedeckd')).trim()).toBe(
      'active\nenabled',
    );
    expect(
      (await sshOk('systemctl show -p KillMode -p Restart -p ExecMainStatus firedeckd')).trim().split('\n').sort(),
    ).toEqual(['ExecMainStatus=0', 'KillMode=process', 'Restart=on-failure']);
    const modes = await sshOk(
      "sudo stat -c '%n %F %a %U %G' /var/lib/firedeck /run/firedeck /run/firedeck/firedeckd.sock /etc/firedeck/firedeckd.conf",
    );
    expect(modes.trim().split('\n')).toEqual([
      '/var/lib/firedeck directory 750 root root',
      '/run/firedeck directory 755 root root',
      '/run/firedeck/firedeckd.sock socket 660 root firedeck',
      '/etc/firedeck/firedeckd.conf regular file 644 root root',
    ]);
  });

  it('firedeckd doctor: the admin outside the group is told how to get in; as root, and once a member, it passes', async () => {
    const outside = await ssh('firedeckd doctor');
    expect(outside.code).toBe(1);
    expect(outside.stdout).toMatch(/^FAIL +group +admin is not in group firedeck/m);
    expect(outside.stdout).toContain('fix: usermod -aG firedeck admin, then log in again');

    const asRoot = await ssh('sudo firedeckd doctor');
    expect(asRoot.code, asRoot.stdout).toBe(0);
    expect(asRoot.stdout).toMatch(
      new RegExp(
        `^ok +socket +/run/firedeck/firedeckd.sock \\(0660, group firedeck\\): firedeckd ${FIREDECK_VERSION.replace(/\./g, '\\.')}`,
        'm',
      ),
    );
    expect(asRoot.stdout).toMatch(/^ok +cgroup +cgroup v2/m);
    expect(asRoot.stdout).toMatch(/^ok +nftables +\/usr\/sbin\/nft: nftables v\d.*the kernel's nf_tables answers/m);
    // A guest under TCG: whether or not its emulated CPU offers KVM, QEMU serves, and the doctor does not block.
    expect(asRoot.stdout).toMatch(/^(ok|info|WARN) +kvm +/m);
    expect(asRoot.stdout).toMatch(/^ok +driver +new VMs get qemu \(tcg\)/m);
    console.log(asRoot.stdout);

    await sshOk('sudo usermod -aG firedeck admin');
    const member = await ssh('firedeckd doctor --json');
    expect(member.code, member.stdout).toBe(0);
    const report = DoctorReport.parse(JSON.parse(member.stdout));
    expect(report.findings.find((f) => f.check === 'group')).toMatchObject({
      status: 'ok',
      message: 'admin is in group firedeck and may use the daemon',
    });
  });

  it("answers daemon.info through firedeckd dial-stdio over the guest's sshd, and the app's host connection connects", async () => {
    const t = await SshTransport.connect(sshTarget());
    transports.push(t);
    const channel = await t.exec('firedeckd dial-stdio');
    const client = new DaemonClient(channel.stream);
    const info = DaemonInfo.parse(await client.call('daemon.info', {}));
    expect(info).toMatchObject({
      hostname: HOSTNAME,
      version: FIREDECK_VERSION,
      protocolVersion: 1,
      defaultDriver: 'qemu',
    });
    client.close();

    const states: HostStatus['state'][] = [];
    const conn = new HostConnection({
      hostId: 'h-fdp00001',
      openTransport: async () => {
        const link = await SshTransport.connect(sshTarget());
        transports.push(link);
        return link;
      },
      daemonCommand: 'firedeckd',
      onStatus: (s) => states.push(s.state),
      onEvent: () => undefined,
    });
    try {
      const status = await conn.connect();
      expect(status.state).toBe('connected');
      expect(status.info).toMatchObject({ hostname: HOSTNAME, version: FIREDECK_VERSION });
      expect(await conn.client().call('vm.list', {})).toEqual([]);
    } finally {
      conn.disconnect();
    }
  });

  it('reads its config file at start: settings take effect, the environment wins over the file, a bad key stops it naming file and line', async () => {
    const conf = `# set by the package suite\nbridge = ${GUEST_BRIDGE}\ncidr = ${GUEST_CIDR}\n`;
    await sshOk('sudo tee -a /etc/firedeck/firedeckd.conf > /dev/null', conf);
    const lines = (await sshOk('wc -l < /etc/firedeck/firedeckd.conf')).trim();
    await restartAndAwait('serving /run/firedeck/firedeckd.sock');
    expect(await sshOk(`ip -4 -br addr show ${GUEST_BRIDGE}`)).toContain('10.213.79.1/24');
    const shown = await sshOk('firedeckd config show');
    expect(shown).toMatch(
      new RegExp(`^bridge += ${GUEST_BRIDGE}  # /etc/firedeck/firedeckd.conf:${Number(lines) - 1}$`, 'm'),
    );
    expect(await sshOk('FIREDECK_BRIDGE=fdp2br0 firedeckd config show')).toMatch(
      /^bridge += fdp2br0 {2}# FIREDECK_BRIDGE$/m,
    );

    await sshOk('sudo tee -a /etc/firedeck/firedeckd.conf > /dev/null', 'brige = fdp3br0\n');
    const refused = await restartAndAwait('unknown key');
    expect(refused).toContain(
      `/etc/firedeck/firedeckd.conf:${Number(lines) + 1}: unknown key "brige" (did you mean bridge?)`,
    );
    const doctor = await ssh('sudo firedeckd doctor');
    expect(doctor.code).toBe(1);
    expect(doctor.stdout).toMatch(/^FAIL +config +\/etc\/firedeck\/firedeckd.conf:\d+: unknown key "brige"/m);

    await sshOk(`sudo sed -i '$ d' /etc/firedeck/firedeckd.conf`);
    await restartAndAwait('serving /run/firedeck/firedeckd.sock');
    expect((await sshOk('systemctl is-active firedeckd')).trim()).toBe('active');
  });

  it('an upgrade restarts the daemon and keeps the edited config; removal stops it and keeps state, group and config', async () => {
    const pidBefore = (await sshOk('systemctl show -p MainPID --value firedeckd')).trim();
    const cursor = await journalCursor();
    await sshOk('sudo DEBIAN_FRONTEND=noninteractive apt-get install -y --reinstall /tmp/firedeckd.deb');
    await awaitJournal('serving /run/firedeck/firedeckd.sock', cursor);
    expect((await sshOk('systemctl show -p MainPID --value firedeckd')).trim()).not.toBe(pidBefore);
    expect(await sshOk('cat /etc/firedeck/firedeckd.conf')).toContain(`bridge = ${GUEST_BRIDGE}`);

    await sshOk('sudo DEBIAN_FRONTEND=noninteractive apt-get remove -y firedeckd');
    expect((await ssh('systemctl is-active firedeckd')).stdout.trim()).toBe('inactive');
    const kept = await sshOk(
      'getent group firedeck >/dev/null && echo group; test -d /var/lib/firedeck && echo state; test -f /etc/firedeck/firedeckd.conf && echo conf; true',
    );
    expect(kept.trim().split('\n')).toEqual(['group', 'state', 'conf']);
    const purged = await sshOk('sudo DEBIAN_FRONTEND=noninteractive apt-get purge -y firedeckd');
    expect(purged).toContain('kept /var/lib/firedeck');
    expect((await ssh('test -e /etc/firedeck')).code).not.toBe(0);
  });

  it('installs from the tarball too: unpack into /, run host-setup, and the daemon serves', async () => {
    await sshOk('cat > /tmp/firedeckd.tar.gz', fs.readFileSync(tarball));
    const cursor = await journalCursor();
    await sshOk('sudo tar -C / -xzf /tmp/firedeckd.tar.gz && sudo /usr/lib/firedeck/host-setup');
    await awaitJournal('serving /run/firedeck/firedeckd.sock', cursor);
    const doctor = await ssh('firedeckd doctor');
    expect(doctor.code, doctor.stdout).toBe(0);
  });
});
