import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { FiredeckError } from '../../../src/shared/errors';
import { ImageCatalog } from '../images/catalog';
import { parseCidr } from '../net/cidr';
import { LeaseStore } from '../net/leases';
import { openDb, type Db } from '../store/db';
import { VmStore } from '../store/vmStore';
import { driverPreference } from './availability';
import { EventBus } from './eventBus';
import { QemuDriver } from './qemu/qemuDriver';
import { VmService, type VmServiceConfig } from './vmService';

describe('driverPreference', () => {
  it('puts the requested driver first, else the configured one, else Firecracker then QEMU', () => {
    expect(driverPreference({}, 'qemu')).toEqual(['qemu']);
    expect(driverPreference({ driver: 'qemu' }, 'firecracker')).toEqual(['firecracker']);
    expect(driverPreference({ driver: 'qemu' })).toEqual(['qemu']);
    expect(driverPreference({ driver: 'auto' })).toEqual(['firecracker', 'qemu']);
    expect(driverPreference({})).toEqual(['firecracker', 'qemu']);
  });
});

describe('the configured driver (driver = … in firedeckd.conf)', () => {
  let dir: string | undefined;
  let db: Db | undefined;
  afterEach(() => {
    db?.close();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  function serviceWith(driver: VmServiceConfig['driver']): VmService {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'firedeck-driver-'));
    db = openDb(path.join(dir, 'state', 'firedeck.db'));
    const subnet = parseCidr('10.213.75.0/24');
    const catalog = new ImageCatalog(path.join(dir, 'state'));
    return new VmService({
      config: {
        stateDir: path.join(dir, 'state'),
        runDir: path.join(dir, 'run'),
        bridge: 'fdp0br0',
        devicePrefix: 'fdp0',
        consoleLogMaxBytes: 65536,
        browserVmTtlSeconds: 60,
        rootfsMode: 'clone',
        stopTimeoutSeconds: 5,
        driver,
      },
      subnet,
      vms: new VmStore(db),
      leases: new LeaseStore(db, subnet, 'fdp0'),
      drivers: [new QemuDriver({ qemuAccel: 'tcg' })],
      images: { resolve: async (ref) => catalog.resolve(ref) },
      events: new EventBus(),
      log: () => undefined,
    });
  }

  async function createError(service: VmService): Promise<FiredeckError> {
    try {
      await service.create({ name: 'x', kind: 'cli', owner: 'o', image: 'absent' });
    } catch (err) {
      if (err instanceof FiredeckError) return err;
      throw err;
    }
    throw new Error('create succeeded');
  }

  it('is the only driver a VM that asks for none may get: no falling back to QEMU behind the config', async () => {
    const service = serviceWith('firecracker');
    try {
      const e = await createError(service);
      expect(e.kind).toBe('unavailable');
      expect(e.message).toContain('firecracker');
    } finally {
      service.shutdown();
    }
  });

  it('with auto, QEMU serves where Firecracker is absent (the create gets as far as the image)', async () => {
    const service = serviceWith('auto');
    try {
      expect((await createError(service)).kind).toBe('not_found');
    } finally {
      service.shutdown();
    }
  });
});
