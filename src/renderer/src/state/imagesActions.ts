import { FiredeckError, toAppError } from '../../../shared/errors';
import type { ImageGcResult } from '../../../shared/protocol/image';
import type { AppClient } from '../api/appClient';
import { daemonCall } from '../api/daemonCall';
import { formatBytes } from '../features/images/imagesModel';
import { confirmAction } from './confirmStore';
import { useHostsStore } from './hostsStore';
import { useImagesStore } from './imagesStore';
import { useUiStore } from './uiStore';

export interface ImagesActions {
  /** A host's catalog and builds (on connect, opening the view, after a build ends). */
  refresh(hostId: string): Promise<void>;
  refreshConnected(): Promise<void>;
  /** Starts a build in the host's daemon; it runs on there whether or not the app stays open. */
  build(hostId: string, recipe: string, options?: { skipBootTest?: boolean }): Promise<boolean>;
  cancel(hostId: string, buildId: string): Promise<void>;
  promote(hostId: string, name: string, version: string): Promise<void>;
  rollback(hostId: string, name: string): Promise<void>;
  /** Asks the daemon what gc would remove, shows it, and collects only when the operator goes ahead. */
  gc(hostId: string, name?: string): Promise<ImageGcResult | null>;
}

function errorText(err: unknown): string {
  const e = FiredeckError.from(err);
  return e.hint ? `${e.message} (${e.hint})` : e.message;
}

/** The confirmation's text: every version and layer gc would remove, and what that frees. */
export function gcDetail(plan: ImageGcResult): string {
  return `It will remove:\n${plan.removed.map((r) => `  ${r}`).join('\n')}\nand free about ${formatBytes(plan.freedBytes)}. The current version and those VMs are pinned to stay.`;
}

export function createImagesActions(client: AppClient): ImagesActions {
  const store = useImagesStore.getState;
  const ui = useUiStore.getState;
  const toastError = (what: string, err: unknown): void => ui().toast(`${what}: ${errorText(err)}`, 'error');

  const refresh = async (hostId: string): Promise<void> => {
    try {
      const [versions, builds] = await Promise.all([
        daemonCall(client, hostId, 'image.list', {}),
        daemonCall(client, hostId, 'image.builds', {}),
      ]);
      store().setVersions(hostId, versions);
      store().applyBuilds(hostId, builds);
    } catch (err) {
      store().failed(hostId, toAppError(err));
    }
  };

  const mutate = async (hostId: string, what: string, fn: () => Promise<string | null>): Promise<void> => {
    store().setBusy(hostId, true);
    try {
      const done = await fn();
      if (done !== null) ui().toast(done);
    } catch (err) {
      toastError(what, err);
    } finally {
      store().setBusy(hostId, false);
      await refresh(hostId);
    }
  };

  client.onEvent((e) => {
    if (e.type !== 'daemon.event' || e.envelope.event.type !== 'image.build') return;
    const event = e.envelope.event;
    store().applyEvent(e.hostId, event, e.envelope.at);
    // An ended build changed the catalog (a new version, a new current one): fetch it again.
    if (event.status !== 'running') void refresh(e.hostId);
  });

  useHostsStore.subscribe((next, prev) => {
    for (const [hostId, status] of Object.entries(next.statuses)) {
      const before = prev.statuses[hostId]?.state;
      if (status.state === 'connected' && before !== 'connected') void refresh(hostId);
      if ((status.state === 'disconnected' || status.state === 'failed') && before !== status.state) {
        store().dropHost(hostId);
      }
    }
  });

  return {
    refresh,
    async refreshConnected() {
      const connected = Object.values(useHostsStore.getState().statuses).filter((s) => s.state === 'connected');
      await Promise.all(connected.map((s) => refresh(s.hostId)));
    },
    async build(hostId, recipe, options = {}) {
      try {
        const build = await daemonCall(client, hostId, 'image.build.start', {
          recipe,
          ...(options.skipBootTest === true ? { skipBootTest: true } : {}),
        });
        store().applyBuilds(hostId, [build]);
        return true;
      } catch (err) {
        toastError(`Build ${recipe}`, err);
        return false;
      }
    },
    cancel: (hostId, buildId) =>
      mutate(hostId, 'Cancel the build', async () => {
        store().applyBuilds(hostId, [await daemonCall(client, hostId, 'image.build.cancel', { buildId })]);
        return null;
      }),
    promote: (hostId, name, version) =>
      mutate(hostId, `Promote ${name}@${version}`, async () => {
        await daemonCall(client, hostId, 'image.promote', { name, version });
        return `${name}@${version} is current`;
      }),
    rollback: (hostId, name) =>
      mutate(hostId, `Roll back ${name}`, async () => {
        const now = await daemonCall(client, hostId, 'image.rollback', { name });
        return `${name} rolled back to ${now.version}`;
      }),
    async gc(hostId, name) {
      let result: ImageGcResult | null = null;
      await mutate(hostId, 'Collect old images', async () => {
        const params = name === undefined ? {} : { name };
        const plan = await daemonCall(client, hostId, 'image.gc.plan', params);
        if (plan.removed.length === 0) return 'Nothing to collect: every version is current, recent or pinned';
        const ok = await confirmAction({
          title: `Collect ${plan.removed.length} old image ${plan.removed.length === 1 ? 'item' : 'items'}?`,
          detail: gcDetail(plan),
          confirmLabel: 'Remove them',
          danger: true,
        });
        if (!ok) return null;
        result = await daemonCall(client, hostId, 'image.gc', params);
        return `Removed ${result.removed.length}, freed ${formatBytes(result.freedBytes)}`;
      });
      return result;
    },
  };
}
