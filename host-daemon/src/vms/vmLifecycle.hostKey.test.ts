import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { ConsoleMarker } from '../console/markers';
import { openDb, type Db } from '../store/db';
import type { VmHandle } from '../store/vmHandle';
import { VmStore } from '../store/vmStore';
import { EventBus } from './eventBus';
import type { ConsoleWatch, VmConsoles } from './vmConsoles';
import { VmLifecycle, type VmLifecycleDeps } from './vmLifecycle';
import { newVm } from '../store/testing/newVm';

const ID = 'vm-00000000000000a1';
const FIRST = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl';
const FORGED = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB';

let dir: string;
let db: Db;
let vms: VmStore;
let logged: string[];
let lifecycle: VmLifecycle;
let marker: (m: ConsoleMarker) => void;

beforeEach(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'firedeck-hostkey-'));
  db = openDb(path.join(dir, 'firedeck.db'));
  vms = new VmStore(db);
  vms.insert(newVm(ID, 'alice-cli'));
  vms.update(ID, { state: 'booting', hostKey: null });
  logged = [];
  // Only the console is reached from attachConsole; the rest of the lifecycle's deps stay unused here.
  const consoles = {
    attach: async (_id: string, _handle: VmHandle, watch: ConsoleWatch) => {
      marker = (m) => watch.onMarker(m);
    },
  } as unknown as VmConsoles;
  lifecycle = new VmLifecycle({
    vms,
    events: new EventBus(),
    consoles,
    log: (line: string) => logged.push(line),
  } as unknown as VmLifecycleDeps);
  await lifecycle.attachConsole(ID, { pid: process.pid } as unknown as VmHandle);
});

afterEach(() => {
  db.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

describe('the host key pinned for a boot', () => {
  it('is the first FIREDECK-HOSTKEY; a later, different one is ignored and logged', () => {
    marker({ type: 'hostkey', key: FIRST });
    expect(vms.require(ID).hostKey).toBe(FIRST);
    marker({ type: 'ready', what: 'vm' });
    marker({ type: 'hostkey', key: FORGED });
    expect(vms.require(ID).hostKey).toBe(FIRST);
    expect(vms.require(ID).vm.hostKey).toBe(FIRST);
    expect(logged).toHaveLength(1);
    expect(logged[0]).toMatch(/alice-cli .*ignored a later FIREDECK-HOSTKEY/);
    // The log names the key type only: a forged line is not repeated into the daemon's log.
    expect(logged[0]).not.toContain(FORGED.split(' ')[1]);
    marker({ type: 'hostkey', key: FIRST });
    expect(logged).toHaveLength(1);
  });

  it('is per boot: a boot clears it, and that boot pins its own first key', () => {
    marker({ type: 'hostkey', key: FIRST });
    vms.update(ID, { state: 'booting', hostKey: null });
    marker({ type: 'hostkey', key: FORGED });
    expect(vms.require(ID).hostKey).toBe(FORGED);
  });
});
