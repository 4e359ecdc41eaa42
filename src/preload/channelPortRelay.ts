import {
  CHANNEL_PORT_WINDOW_MESSAGE,
  ChannelPortNotice,
  type ChannelPortWindowMessage,
} from '../shared/app/channelPort';

/**
 * Hands a channel's port, transferred by main, on to the page. contextBridge cannot carry a MessagePort, so it
 * goes by window.postMessage, Electron's documented pattern under context isolation; `post` addresses it to
 * the page's own origin. Anything but one port with a valid notice is closed and dropped.
 */
export function relayChannelPort<P extends { close(): void }>(
  payload: unknown,
  ports: readonly P[],
  post: (message: ChannelPortWindowMessage, transfer: P[]) => void,
): boolean {
  const notice = ChannelPortNotice.safeParse(payload);
  const port = ports[0];
  if (!notice.success || port === undefined || ports.length !== 1) {
    for (const p of ports) p.close();
    return false;
  }
  post({ type: CHANNEL_PORT_WINDOW_MESSAGE, channelId: notice.data.channelId }, [port]);
  return true;
}

/**
 * `postMessage`'s target origin for "this page's own origin". The page is a file:// document in Electron,
 * whose origin is opaque: naming it (`location.origin` is `file://`) matches nothing and the message is
 * silently dropped, while '/' means the sender's origin, which is the page's, and never '*'.
 */
export const PAGE_ORIGIN = '/';
