import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { FiredeckError } from '../../../../src/shared/errors';
import { DEFAULT_SERIAL_RATE_LIMITER } from './driver';
import { firecrackerSettings } from './settings';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fdt-fcset-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
const passwd = path.join(dir, 'passwd');
fs.writeFileSync(passwd, 'root:x:0:0:root:/root:/bin/bash\nfiredeck-fc:x:998:997::/nonexistent:/usr/sbin/nologin\n');
const config = { stateDir: '/var/lib/firedeck', devicePrefix: 'fd' };

function kind(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    return err instanceof FiredeckError ? `${err.kind}: ${err.message}` : String(err);
  }
  return 'accepted';
}

describe('Firecracker settings', () => {
  it('run Firecracker under the jailer by default, as the unprivileged firedeck-fc, in its own netns', () => {
    const settings = firecrackerSettings({}, config, passwd);
    expect(settings.unavailable).toBeUndefined();
    expect(settings.binary).toBe('firecracker');
    expect(settings.serialRateLimiter).toEqual(DEFAULT_SERIAL_RATE_LIMITER);
    expect(settings.jailer).toEqual({
      binary: 'jailer',
      uid: 998,
      gid: 997,
      chrootBaseDir: '/var/lib/firedeck/jailer',
      cgroupVersion: 'auto',
      limits: true,
      cgroups: [],
      parentCgroup: 'firedeck',
      netns: 'per-vm',
      netnsPrefix: 'fd',
    });
  });

  it('run it directly only when told to', () => {
    expect(firecrackerSettings({ FIREDECK_FIRECRACKER_JAILER: 'off' }, config, passwd).jailer).toBeNull();
    expect(kind(() => firecrackerSettings({ FIREDECK_FIRECRACKER_JAILER: 'no' }, config, passwd))).toMatch(
      /^invalid_params: FIREDECK_FIRECRACKER_JAILER must be on or off/,
    );
  });

  it('leave the driver unavailable, saying how to fix it, when the jail user does not exist', () => {
    const settings = firecrackerSettings({ FIREDECK_FIRECRACKER_USER: 'nobody-here' }, config, passwd);
    expect(settings.unavailable?.message).toBe('the jail user nobody-here does not exist');
    expect(settings.unavailable?.hint).toMatch(/useradd --system .* nobody-here/);
    expect(firecrackerSettings({ FIREDECK_FIRECRACKER_USER: '62080:62081' }, config, passwd).jailer).toMatchObject({
      uid: 62080,
      gid: 62081,
    });
  });

  it('refuse at daemon start what the jailer would refuse, naming the variable', () => {
    expect(
      kind(() =>
        firecrackerSettings({ FIREDECK_FIRECRACKER_CGROUPS: 'cpu.weight=50; io.max=8:0 rbps=1' }, config, passwd),
      ),
    ).toMatch(/^invalid_params: FIREDECK_FIRECRACKER_CGROUPS: jailer cgroup setting "io.max=8:0 rbps=1" is refused/);
    expect(kind(() => firecrackerSettings({ FIREDECK_FIRECRACKER_CGROUP_PARENT: '../up' }, config, passwd))).toMatch(
      /^invalid_params: FIREDECK_FIRECRACKER_CGROUP_PARENT: jailer parent cgroup/,
    );
    expect(kind(() => firecrackerSettings({ FIREDECK_FIRECRACKER_CGROUP_VERSION: '3' }, config, passwd))).toMatch(
      /auto, 1 or 2/,
    );
    expect(kind(() => firecrackerSettings({ FIREDECK_FIRECRACKER_NETNS: 'none' }, config, passwd))).toMatch(
      /per-vm or host/,
    );
    expect(kind(() => firecrackerSettings({ FIREDECK_FIRECRACKER_SERIAL_RATE_LIMIT: '10' }, config, passwd))).toMatch(
      /at least 1024/,
    );
    expect(
      firecrackerSettings({ FIREDECK_FIRECRACKER_CGROUPS: 'cpu.weight=50; cpuset.cpus=2-3' }, config, passwd).jailer
        ?.cgroups,
    ).toEqual(['cpu.weight=50', 'cpuset.cpus=2-3']);
    expect(
      firecrackerSettings({ FIREDECK_FIRECRACKER_SERIAL_RATE_LIMIT: 'off' }, config, passwd).serialRateLimiter,
    ).toBeNull();
  });
});
