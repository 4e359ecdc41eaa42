import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { DoctorReport, type DoctorFinding } from '../../../src/shared/protocol/doctor';
import { testDaemonInfo } from '../../../test/support/daemonInfo';
import { RpcServer } from '../rpc/server';
import { doctorCommand, hostDoctorOptions, runDoctor, type DoctorOptions } from './doctorCommand';

/**
 * The doctor against this machine's real tools (ip, qemu, statfs, a real RpcServer on a socket), with the files it
 * reads about users, groups, cgroups and KVM pointed at a scratch dir so each finding can be steered. Firecracker
 * cannot run here: PATH gets two small scripts that answer --version the way its release binaries do.
 */
let dir: string;
let server: RpcServer;
let socketPath: string;
const gid = process.getgid!();
const savedPath = process.env.PATH;

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'firedeck-doctor-'));
  socketPath = path.join(dir, 'run', 'firedeckd.sock');
  fs.mkdirSync(path.dirname(socketPath));
  server = new RpcServer({});
  server.register('daemon.info', () => ({ ...testDaemonInfo, version: '0.1.0-doctor', pid: 4242 }));
  await server.listen(socketPath, 0o660, gid);
});

afterAll(async () => {
  await server.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

let scratch: string;
beforeEach(() => {
  scratch = fs.mkdtempSync(path.join(dir, 'case-'));
  fs.mkdirSync(path.join(scratch, 'state'), { mode: 0o750 });
  fs.mkdirSync(path.join(scratch, 'cgroup'));
  fs.writeFileSync(path.join(scratch, 'cgroup', 'cgroup.controllers'), 'cpuset cpu io memory hugetlb pids\n');
  fs.writeFileSync(path.join(scratch, 'group'), `root:x:0:\nfdpdoc:x:${gid}:alice\nother:x:4321:\n`);
  fs.writeFileSync(
    path.join(scratch, 'passwd'),
    'root:x:0:0::/root:/bin/sh\nalice:x:2001:2001::/home/alice:/bin/sh\nbob:x:2002:2002::/home/bob:/bin/sh\n',
  );
});
afterEach(() => {
  process.env.PATH = savedPath;
});

function options(over: Partial<DoctorOptions> = {}, env: NodeJS.ProcessEnv = {}): DoctorOptions {
  return {
    ...hostDoctorOptions(),
    env: {
      FIREDECK_CONFIG: '/dev/null',
      FIREDECK_SOCKET: socketPath,
      FIREDECK_STATE_DIR: path.join(scratch, 'state'),
      FIREDECK_GROUP: 'fdpdoc',
      FIREDECK_BRIDGE: 'fdp0nobr',
      FIREDECK_CIDR: '10.213.75.0/24',
      ...env,
    },
    uid: 0,
    kvmDevice: path.join(scratch, 'kvm-absent'),
    cgroupRoot: path.join(scratch, 'cgroup'),
    groupFile: path.join(scratch, 'group'),
    passwdFile: path.join(scratch, 'passwd'),
    ...over,
  };
}

function finding(report: DoctorReport, check: string): DoctorFinding {
  const f = report.findings.find((x) => x.check === check);
  if (!f) throw new Error(`no ${check} finding in ${JSON.stringify(report.findings)}`);
  return f;
}

function capture(): { stream: Writable; text: () => string } {
  let text = '';
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      text += chunk.toString();
      cb();
    },
  });
  return { stream, text: () => text };
}

describe('firedeckd doctor', () => {
  it('passes a usable host (exit 0) and reports the running daemon through its socket', async () => {
    const out = capture();
    const code = await doctorCommand([], options(), out.stream);
    const text = out.text();
    expect(text).not.toMatch(/^FAIL/m);
    expect(code).toBe(0);
    expect(text).toMatch(/^ok +socket +.*firedeckd 0\.1\.0-doctor pid 4242, protocol 1/m);
    expect(text).toMatch(/^ok +group +root may use the socket/m);
    expect(text).toMatch(/^ok +cgroup +cgroup v2 \(cpuset cpu io memory hugetlb pids\)/m);
    expect(text).toMatch(/^ok +qemu +\/usr\/bin\/qemu-system-x86_64: QEMU emulator version \d/m);
    expect(text).toMatch(
      /^ok +qemu-sandbox +sandboxed: -sandbox on,obsolete=deny,elevateprivileges=deny,.* uid of its own/m,
    );
    expect(text).toMatch(
      /^info +bridge +fdp0nobr does not exist yet: firedeckd creates it on start with 10\.213\.75\.1\/24/m,
    );
    expect(text).toMatch(/no blocking findings/);
  });

  it('warns when QEMU runs unconfined (qemu-sandbox = off)', async () => {
    const out = capture();
    await doctorCommand(['--json'], options({}, { FIREDECK_QEMU_SANDBOX: 'off' }), out.stream);
    const report = DoctorReport.parse(JSON.parse(out.text()));
    expect(finding(report, 'qemu-sandbox')).toMatchObject({
      status: 'warn',
      message: expect.stringContaining('as root without -sandbox'),
      fix: expect.stringContaining('qemu-sandbox = on'),
    });
  });

  it('says what blocks, with the fix, and exits 1', async () => {
    const out = capture();
    const code = await doctorCommand(
      ['--json'],
      options({}, { FIREDECK_GROUP: 'fdpnogroup', FIREDECK_SOCKET: path.join(scratch, 'none.sock') }),
      out.stream,
    );
    expect(code).toBe(1);
    const report = DoctorReport.parse(JSON.parse(out.text()));
    expect(finding(report, 'group')).toMatchObject({
      status: 'fail',
      fix: expect.stringContaining('groupadd --system fdpnogroup'),
    });
    expect(finding(report, 'socket')).toMatchObject({
      status: 'fail',
      fix: expect.stringContaining('systemctl enable --now firedeckd'),
    });
    expect(report.blocking).toBe(2);
  });

  it('reports a broken config file as a finding naming file, line and key, and still checks the host', async () => {
    const file = path.join(scratch, 'bad.conf');
    fs.writeFileSync(file, '# ok\nbrige = fdp1br0\n');
    const report = await runDoctor(['--config', file], options());
    expect(finding(report, 'config')).toMatchObject({
      status: 'fail',
      message: expect.stringContaining(`${file}:2: unknown key "brige" (did you mean bridge?)`),
    });
    expect(finding(report, 'socket').status).toBe('ok');
  });

  it('applies flags over the environment over the file', async () => {
    const file = path.join(scratch, 'good.conf');
    fs.writeFileSync(file, `state-dir = ${path.join(scratch, 'nowhere-file')}\nbridge = fdp0filebr\n`);
    const env = { FIREDECK_STATE_DIR: undefined, FIREDECK_BRIDGE: undefined };
    const fromFile = await runDoctor(['--config', file], options({}, env));
    expect(finding(fromFile, 'config').message).toBe(
      `${file}: sets state-dir, bridge; the environment overrides socket, group, cidr`,
    );
    expect(finding(fromFile, 'bridge').message).toMatch(/^fdp0filebr does not exist yet/);
    expect(finding(fromFile, 'disk').message).toContain(`${path.join(scratch, 'nowhere-file')} (not there yet`);
    const flagged = await runDoctor(
      ['--config', file, '--state-dir', path.join(scratch, 'state')],
      options({}, { ...env, FIREDECK_BRIDGE: 'fdp0envbr' }),
    );
    expect(finding(flagged, 'bridge').message).toMatch(/^fdp0envbr does not exist yet/);
    expect(finding(flagged, 'disk').message).toContain(`GiB free in ${path.join(scratch, 'state')};`);
    expect(finding(flagged, 'config').message).toBe(
      `${file}: sets state-dir, bridge; the environment overrides socket, group, bridge, cidr`,
    );
  });

  it('refuses a cidr that overlaps a network of this host', async () => {
    const report = await runDoctor([], options({}, { FIREDECK_CIDR: '127.0.0.0/24' }));
    expect(finding(report, 'bridge')).toMatchObject({
      status: 'fail',
      message: expect.stringContaining("overlaps lo's 127.0.0.1/8"),
    });
  });

  it('checks KVM: absent is a warning, or blocking when the configured driver needs it', async () => {
    const auto = await runDoctor([], options());
    expect(finding(auto, 'kvm')).toMatchObject({
      status: 'warn',
      message: expect.stringMatching(/^no .*kvm-absent: QEMU runs guests under TCG/),
    });
    const fc = await runDoctor([], options({}, { FIREDECK_DRIVER: 'firecracker' }));
    expect(finding(fc, 'kvm').status).toBe('fail');
    expect(finding(fc, 'firecracker')).toMatchObject({
      status: 'fail',
      message: expect.stringContaining('configured as the driver'),
    });
    expect(finding(fc, 'driver').status).toBe('fail');
  });

  it('reports Firecracker and jailer with their versions when they are on PATH', async () => {
    const bin = path.join(scratch, 'bin');
    fs.mkdirSync(bin);
    fs.writeFileSync(path.join(bin, 'firecracker'), '#!/bin/sh\necho "Firecracker v1.16.0"\n', { mode: 0o755 });
    process.env.PATH = `${bin}:${savedPath}`;
    const jailUser = { FIREDECK_FIRECRACKER_USER: '65534:65534' };
    const noJailer = await runDoctor([], options({}, jailUser));
    expect(finding(noJailer, 'firecracker').message).toContain(
      `${bin}/firecracker: Firecracker v1.16.0; jailer not found`,
    );
    fs.writeFileSync(path.join(bin, 'jailer'), '#!/bin/sh\necho "Jailer v1.16.0"\n', { mode: 0o755 });
    const both = await runDoctor([], options({}, jailUser));
    expect(finding(both, 'firecracker').message).toContain(`jailer Jailer v1.16.0 at ${bin}/jailer`);
  });

  it('tells a user outside the group how to get in, and one added since login to log in again', async () => {
    const bob = await runDoctor([], options({ uid: 2002, processGroups: [2002] }));
    expect(finding(bob, 'group')).toMatchObject({ status: 'fail', fix: 'usermod -aG fdpdoc bob, then log in again' });
    const alice = await runDoctor([], options({ uid: 2001, processGroups: [2001] }));
    expect(finding(alice, 'group')).toMatchObject({
      status: 'warn',
      message: expect.stringContaining('this login session predates it'),
    });
    const member = await runDoctor([], options({ uid: 2001, processGroups: [2001, gid] }));
    expect(finding(member, 'group')).toMatchObject({
      status: 'ok',
      message: 'alice is in group fdpdoc and may use the daemon',
    });
    const sudo = await runDoctor([], options({}, { SUDO_USER: 'bob' }));
    expect(finding(sudo, 'group')).toMatchObject({ status: 'warn', fix: 'usermod -aG fdpdoc bob, then log in again' });
  });

  it('checks cgroup v2 and its controllers', async () => {
    fs.writeFileSync(path.join(scratch, 'cgroup', 'cgroup.controllers'), 'cpuset io pids\n');
    expect(finding(await runDoctor([], options()), 'cgroup')).toMatchObject({
      status: 'warn',
      message: expect.stringContaining('without the cpu and memory controller'),
    });
    const v1 = await runDoctor([], options({ cgroupRoot: path.join(scratch, 'no-cgroup') }));
    expect(finding(v1, 'cgroup').message).toContain('is not a cgroup v2 hierarchy');
  });

  it('checks free space and the state dir mode', async () => {
    const full = await runDoctor([], options({ minFreeBytes: 2 ** 60 }));
    expect(finding(full, 'disk')).toMatchObject({ status: 'fail', message: expect.stringContaining('too little') });
    const low = await runDoctor([], options({ lowFreeBytes: 2 ** 60 }));
    expect(finding(low, 'disk').status).toBe('warn');
    fs.chmodSync(path.join(scratch, 'state'), 0o777);
    const open = await runDoctor([], options());
    expect(finding(open, 'disk')).toMatchObject({ status: 'warn', fix: `chmod 0750 ${path.join(scratch, 'state')}` });
  });

  it('finds a socket with the wrong mode', async () => {
    fs.chmodSync(socketPath, 0o666);
    try {
      const report = await runDoctor([], options());
      expect(finding(report, 'socket')).toMatchObject({ status: 'fail', message: expect.stringContaining('mode 666') });
    } finally {
      fs.chmodSync(socketPath, 0o660);
    }
  });
});
