import { FiredeckError } from '../../../shared/errors';
import type { AppCallName, AppEvent, AppParams, AppResult } from '../../../shared/app/contract';
import {
  WEB_API_PATH,
  WEB_NO_SESSION_CLOSE,
  type WebCallFrame,
  type WebHelloFrame,
  type WebServerFrame,
} from '../../../shared/app/webWire';
import { unwrap, type AppClient, type AppLink } from './appClient';

interface PendingCall {
  resolve: (value: unknown) => void;
  reject: (err: FiredeckError) => void;
}

export interface WebSocketClientOptions {
  /** The session secret to present as each socket's first frame (`webSession`), or null when the page has none. */
  session: () => Promise<string | null>;
  /**
   * Called when the page has no session, or the server refused the one it presented (it was started again since
   * the page got it): the page should load the server's explanation of which link to open. Without it the
   * client just keeps trying.
   */
  onSessionGone?: () => void;
}

/**
 * Web mode: calls and events over one WebSocket to the page's own origin; its first frame presents the session
 * secret, and calls go out once the server said `ready`. If the socket drops, pending calls fail and the socket
 * is reopened with backoff.
 */
export function webSocketClient(
  location: Pick<Location, 'protocol' | 'host'>,
  options: WebSocketClientOptions,
): AppClient {
  const url = `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}${WEB_API_PATH}`;
  const listeners = new Set<(event: AppEvent) => void>();
  const linkListeners = new Set<(link: AppLink) => void>();
  /** Set once a ready socket closed, until the next one is ready: `lost` and `restored` are said once each. */
  let lost = false;
  const pending = new Map<number, PendingCall>();
  let queue: string[] = [];
  let socket: WebSocket | null = null;
  /** The socket presented the session and the server said `ready`: calls may be sent. */
  let open = false;
  let nextId = 1;
  let attempt = 0;

  const sessionGone = (): void => {
    if (options.onSessionGone) options.onSessionGone();
    else retry();
  };
  const retry = (): void => {
    attempt++;
    setTimeout(() => void connect(), Math.min(10_000, 250 * 2 ** attempt));
  };

  const connect = async (): Promise<void> => {
    const session = await options.session();
    if (session === null) return sessionGone();
    const ws = new WebSocket(url);
    socket = ws;
    ws.onopen = () => {
      const hello: WebHelloFrame = { session };
      ws.send(JSON.stringify(hello));
    };
    ws.onmessage = (msg: MessageEvent<string>) => {
      const frame = JSON.parse(msg.data) as WebServerFrame;
      if ('ready' in frame) {
        open = true;
        attempt = 0;
        for (const queued of queue) ws.send(queued);
        queue = [];
        if (lost) {
          lost = false;
          for (const l of linkListeners) l('restored');
        }
        return;
      }
      if ('id' in frame) {
        const call = pending.get(frame.id);
        pending.delete(frame.id);
        if (!call) return;
        try {
          call.resolve(unwrap(frame.envelope));
        } catch (err) {
          call.reject(err as FiredeckError);
        }
        return;
      }
      for (const l of listeners) l(frame.event);
    };
    ws.onclose = (event: CloseEvent) => {
      const wasOpen = open;
      open = false;
      socket = null;
      for (const call of pending.values()) {
        call.reject(
          new FiredeckError('disconnected', 'Lost the connection to Firedeck web mode', {
            hint: 'Is it still running?',
          }),
        );
      }
      pending.clear();
      queue = [];
      if (wasOpen) {
        lost = true;
        for (const l of linkListeners) l('lost');
      }
      if (event.code === WEB_NO_SESSION_CLOSE) return sessionGone();
      retry();
    };
  };
  void connect();

  return {
    transport: 'websocket',
    call<N extends AppCallName>(name: N, params: AppParams<N>): Promise<AppResult<N>> {
      const id = nextId++;
      const call: WebCallFrame = { id, name, params };
      const frame = JSON.stringify(call);
      return new Promise<AppResult<N>>((resolve, reject) => {
        pending.set(id, { resolve: resolve as (value: unknown) => void, reject });
        if (open && socket) socket.send(frame);
        else queue.push(frame);
      });
    },
    onEvent(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    onLink(listener) {
      linkListeners.add(listener);
      return () => linkListeners.delete(listener);
    },
  };
}
