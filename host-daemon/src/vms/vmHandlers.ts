import { FiredeckError } from '../../../src/shared/errors';
import { EVENT_NOTIFICATION, type EventEnvelope } from '../../../src/shared/protocol/events';
import type { RpcServer } from '../rpc/server';
import type { EventBus } from './eventBus';
import type { VmService } from './vmService';
import type { VmStatsSampler } from './vmStats';

/** Registers every `vm.*` and `events.*` method on the RPC server. */
export function registerVmHandlers(
  server: RpcServer,
  vms: VmService,
  events: EventBus,
  reconciled: Promise<unknown>,
  stats: VmStatsSampler,
): void {
  // VM calls wait for the start-up reconciliation, so that nobody acts on a VM the machine no longer runs.
  const after = async <T>(fn: () => T | Promise<T>): Promise<T> => {
    await reconciled;
    return fn();
  };
  server.register('vm.list', (p) => after(() => vms.list(p.includeDestroyed ?? false)));
  server.register('vm.get', (p) => after(() => vms.get(p.id)));
  server.register('vm.create', (p) => after(() => vms.create(p)));
  server.register('vm.start', (p) => after(() => vms.start(p.id)));
  server.register('vm.stop', (p) => after(() => vms.stop(p.id, stopOpts(p))));
  server.register('vm.restart', (p) => after(() => vms.restart(p.id, stopOpts(p))));
  server.register('vm.destroy', (p) => after(() => vms.destroy(p.id)));
  // A waiter belongs to its caller's connection: it ends (timer cleared, listener removed) when that closes.
  server.register('vm.waitReady', (p, { connection }) =>
    after(() => vms.waitReady(p.id, p.marker ?? 'vm', p.timeoutSeconds ?? 120, connection.signal)),
  );
  server.register('vm.console.tail', (p) => after(() => vms.consoleTail(p.id, p.lines ?? 200)));
  server.register('vm.stats', (p) => ({ intervalMs: stats.intervalMs, samples: stats.latest(p.ids) }));

  // Subscriptions belong to their connection and end with it.
  const owned = new Map<string, Map<string, () => void>>();
  server.register('events.subscribe', (p, { connection }) => {
    const sub = events.subscribe(p.types ?? null, (d) => {
      const envelope: EventEnvelope = { subscription: sub.id, seq: d.seq, at: d.at, event: d.event };
      connection.notify(EVENT_NOTIFICATION, envelope);
    });
    let mine = owned.get(connection.id);
    if (!mine) {
      const created = new Map<string, () => void>();
      owned.set(connection.id, created);
      connection.onClose(() => {
        for (const unsubscribe of created.values()) unsubscribe();
        owned.delete(connection.id);
      });
      mine = created;
    }
    mine.set(sub.id, sub.unsubscribe);
    return { subscription: sub.id, seq: events.lastSeq };
  });
  server.register('events.unsubscribe', (p, { connection }) => {
    const unsubscribe = owned.get(connection.id)?.get(p.subscription);
    if (!unsubscribe) throw new FiredeckError('not_found', `No subscription ${p.subscription} on this connection`);
    unsubscribe();
    owned.get(connection.id)?.delete(p.subscription);
    return { ok: true as const };
  });
}

function stopOpts(p: { timeoutSeconds?: number | undefined; force?: boolean | undefined }): {
  timeoutSeconds?: number;
  force?: boolean;
} {
  const o: { timeoutSeconds?: number; force?: boolean } = {};
  if (p.timeoutSeconds !== undefined) o.timeoutSeconds = p.timeoutSeconds;
  if (p.force !== undefined) o.force = p.force;
  return o;
}
