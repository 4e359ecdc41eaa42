import { CHANNEL_PORT_WINDOW_MESSAGE, type ChannelPortWindowMessage } from '../../../shared/app/channelPort';
import type { AppCallName, AppEnvelope, AppParams, AppResult, FiredeckBridge } from '../../../shared/app/contract';
import { FiredeckError } from '../../../shared/errors';
import { unwrap, type AppClient } from './appClient';

/** Electron: calls go through the preload's named methods; channel bytes on the ports the preload posts. */
export function ipcClient(bridge: FiredeckBridge, win: PortWindow = window): AppClient {
  const ports = channelPortInbox(win);
  return {
    transport: 'ipc',
    async call<N extends AppCallName>(name: N, params: AppParams<N>): Promise<AppResult<N>> {
      const method = bridge[name] as (p: AppParams<N>) => Promise<AppEnvelope<AppResult<N>>>;
      return unwrap(await method(params));
    },
    onEvent: (listener) => bridge.onEvent(listener),
    channelPort: ports,
  };
}

/** The window as the inbox uses it: the preload posts each port to it, as a message from itself. */
export interface PortWindow {
  addEventListener(type: 'message', listener: (event: MessageEvent) => void): void;
}

/** How long an opened channel's port may take to follow the open answer before the open fails. */
export const CHANNEL_PORT_WAIT_MS = 10_000;

/**
 * Keeps the ports the preload hands over until the channel hub asks for them: the port and the answer to
 * `channels.open` travel separately, so either may come first. Only messages the window posted to itself
 * count (a frame could post to it too); a port nobody will claim is closed, which ends its channel in main.
 */
export function channelPortInbox(
  win: PortWindow,
  waitMs = CHANNEL_PORT_WAIT_MS,
): (channelId: string) => Promise<MessagePort> {
  const arrived = new Map<string, MessagePort>();
  const waiting = new Map<string, (port: MessagePort) => void>();
  const givenUp = new Set<string>();
  win.addEventListener('message', (event) => {
    if (event.source !== win) return;
    const port = event.ports[0];
    if (!isPortNotice(event.data) || port === undefined) return;
    const { channelId } = event.data;
    const waiter = waiting.get(channelId);
    waiting.delete(channelId);
    if (waiter) waiter(port);
    else if (givenUp.delete(channelId) || arrived.has(channelId)) port.close();
    else arrived.set(channelId, port);
  });
  return (channelId) => {
    const port = arrived.get(channelId);
    arrived.delete(channelId);
    if (port) return Promise.resolve(port);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        waiting.delete(channelId);
        givenUp.add(channelId);
        reject(new FiredeckError('unavailable', `The port of channel ${channelId} did not arrive from main`));
      }, waitMs);
      waiting.set(channelId, (p) => {
        clearTimeout(timer);
        resolve(p);
      });
    });
  };
}

/** The preload's notice among whatever else the window is sent (it is told apart, not validated: the preload did). */
function isPortNotice(data: unknown): data is ChannelPortWindowMessage {
  const notice = data as Partial<ChannelPortWindowMessage> | null;
  return (
    typeof notice === 'object' && notice?.type === CHANNEL_PORT_WINDOW_MESSAGE && typeof notice.channelId === 'string'
  );
}
