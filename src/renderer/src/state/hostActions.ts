import { FiredeckError } from '../../../shared/errors';
import type { HostInput } from '../../../shared/app/contract';
import type { AppClient } from '../api/appClient';
import { useHostsStore } from './hostsStore';

/** Side effects of the hosts view: calls to main and what their outcomes change in the store. */
export interface HostActions {
  refresh(): Promise<void>;
  add(input: HostInput): Promise<boolean>;
  update(hostId: string, input: HostInput): Promise<boolean>;
  remove(hostId: string): Promise<void>;
  connect(hostId: string): Promise<void>;
  trust(hostId: string, fingerprint: string): Promise<void>;
  disconnect(hostId: string): Promise<void>;
  /** Connects every host at once; each host's outcome shows in its own status. */
  connectAll(): Promise<void>;
}

export function createHostActions(client: AppClient): HostActions {
  const store = useHostsStore.getState;
  const report = (err: unknown): void => {
    const e = FiredeckError.from(err);
    store().setNotice({ message: e.message, hint: e.hint });
  };
  const refresh = async (): Promise<void> => {
    const [hosts, statuses] = await Promise.all([client.call('hosts.list', {}), client.call('hosts.statuses', {})]);
    store().setHosts(hosts);
    for (const s of statuses) store().setStatus(s);
  };
  const connect = async (hostId: string): Promise<void> => {
    store().setNotice(null);
    try {
      await client.call('hosts.connect', { hostId });
    } catch (err) {
      if (err instanceof FiredeckError && err.kind === 'host_key_unknown') {
        const host = store().hosts.find((h) => h.id === hostId);
        store().setPendingTrust({
          hostId,
          hostName: host?.name ?? hostId,
          fingerprint: String(err.details?.fingerprint ?? ''),
          keyType: String(err.details?.keyType ?? ''),
        });
        return;
      }
      report(err);
    }
  };

  client.onEvent((event) => {
    if (event.type === 'host.status') store().setStatus(event.status);
    else if (event.type === 'hosts.changed') refresh().catch(report);
    else if (event.type === 'daemon.event') store().setLastEvent({ hostId: event.hostId, event: event.envelope.event });
  });

  return {
    refresh: () => refresh().catch(report),
    async add(input) {
      try {
        const host = await client.call('hosts.add', input);
        await refresh();
        store().select(host.id);
        return true;
      } catch (err) {
        report(err);
        return false;
      }
    },
    async update(hostId, input) {
      try {
        await client.call('hosts.update', { hostId, host: input });
        await refresh();
        return true;
      } catch (err) {
        report(err);
        return false;
      }
    },
    async remove(hostId) {
      try {
        await client.call('hosts.remove', { hostId });
        await refresh();
      } catch (err) {
        report(err);
      }
    },
    connect,
    async trust(hostId, fingerprint) {
      store().setPendingTrust(null);
      try {
        await client.call('hosts.trustHostKey', { hostId, fingerprint });
        await refresh();
      } catch (err) {
        report(err);
      }
    },
    async connectAll() {
      store().setNotice(null);
      try {
        await client.call('hosts.connectAll', {});
      } catch (err) {
        report(err);
      }
    },
    async disconnect(hostId) {
      try {
        await client.call('hosts.disconnect', { hostId });
      } catch (err) {
        report(err);
      }
    },
  };
}
