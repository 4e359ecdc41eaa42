import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { AppEvent } from '../../shared/app/contract';
import { HostRegistry } from '../hosts/hostRegistry';
import { openLocalStore, type Db } from '../hosts/localStore';
import { AppService, type CallContext } from './appService';

describe('app service dispatch', () => {
  let dir: string;
  let db: Db;
  let service: AppService;
  const events: AppEvent[] = [];
  const ctx: CallContext = { sessionId: 's1', emit: (e) => events.push(e) };

  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'firedeck-app-'));
    db = openLocalStore(dir);
    service = new AppService({ mode: 'web', registry: new HostRegistry(db), localDaemonCommand: 'false' });
    service.onBroadcast((e) => events.push(e));
    events.length = 0;
  });
  afterEach(() => {
    service.shutdown();
    db.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('lists the embedded local host first and refuses to edit or trust it', async () => {
    const list = await service.dispatch('hosts.list', {}, ctx);
    expect(list).toMatchObject({ ok: true, value: [{ id: 'local', kind: 'local' }] });
    expect(await service.dispatch('hosts.remove', { hostId: 'local' }, ctx)).toMatchObject({
      ok: false,
      error: { kind: 'invalid_params' },
    });
  });

  it('validates every call: unknown names, bad params, and never leaks the pinned key', async () => {
    expect(await service.dispatch('hosts.drop', {}, ctx)).toMatchObject({
      ok: false,
      error: { kind: 'method_not_found' },
    });
    expect(await service.dispatch('hosts.add', { name: 'x' }, ctx)).toMatchObject({
      ok: false,
      error: { kind: 'invalid_params' },
    });
    const added = await service.dispatch(
      'hosts.add',
      { name: 'h', address: '127.0.0.1', port: 22, user: 'root', auth: { type: 'agent' } },
      ctx,
    );
    expect(added.ok).toBe(true);
    expect(Object.keys((added as { value: object }).value)).not.toContain('pinnedKey');
    expect(events).toContainEqual({ type: 'hosts.changed' });
  });

  it('checks host settings once, at the boundary: a relative key file, a bad address or user is refused', async () => {
    const host = { name: 'h', address: '127.0.0.1', port: 22, user: 'root', auth: { type: 'agent' } };
    const relative = await service.dispatch(
      'hosts.add',
      { ...host, auth: { type: 'keyFile', path: '.ssh/id_ed25519' } },
      ctx,
    );
    expect(relative).toMatchObject({
      ok: false,
      error: { kind: 'invalid_params', message: expect.stringMatching(/absolute path, or one starting with ~\//) },
    });
    for (const bad of [{ address: 'a b' }, { user: 'Root;rm' }, { port: 0 }]) {
      expect(await service.dispatch('hosts.add', { ...host, ...bad }, ctx)).toMatchObject({
        ok: false,
        error: { kind: 'invalid_params' },
      });
    }
    const added = await service.dispatch('hosts.add', { ...host, name: '  spaced  ' }, ctx);
    const hostId = (added as { value: { id: string; name: string } }).value.id;
    expect((added as { value: { name: string } }).value.name).toBe('spaced');
    expect(await service.dispatch('hosts.update', { hostId, host: { ...host, address: 'a;b' } }, ctx)).toMatchObject({
      ok: false,
      error: { kind: 'invalid_params' },
    });
    const listed = await service.dispatch('hosts.list', {}, ctx);
    expect((listed as { value: { address: string }[] }).value.map((h) => h.address)).not.toContain('a;b');
  });

  it('trusts only a key the host actually presented', async () => {
    const added = await service.dispatch(
      'hosts.add',
      { name: 'h', address: '127.0.0.1', port: 22, user: 'root', auth: { type: 'agent' } },
      ctx,
    );
    const hostId = (added as { value: { id: string } }).value.id;
    const res = await service.dispatch('hosts.trustHostKey', { hostId, fingerprint: `SHA256:${'A'.repeat(43)}` }, ctx);
    expect(res).toMatchObject({ ok: false, error: { kind: 'invalid_state' } });
  });

  it('reports a local daemon that cannot be reached as a failed status with the reason', async () => {
    const res = await service.dispatch('hosts.connect', { hostId: 'local' }, ctx);
    expect(res.ok).toBe(false);
    const statuses = await service.dispatch('hosts.statuses', {}, ctx);
    expect(statuses).toMatchObject({ ok: true, value: [{ hostId: 'local', state: 'failed' }] });
    expect(events.some((e) => e.type === 'host.status' && e.status.state === 'connecting')).toBe(true);
  });

  it('refuses daemon calls and channels on a host that is not connected', async () => {
    expect(
      await service.dispatch('daemon.call', { hostId: 'local', method: 'vm.list', params: {} }, ctx),
    ).toMatchObject({
      ok: false,
      error: { kind: 'unavailable' },
    });
    expect(
      await service.dispatch('channels.open', { hostId: 'local', kind: 'console', vmId: 'vm-00000000' }, ctx),
    ).toMatchObject({ ok: false, error: { kind: 'unavailable' } });
  });
});
