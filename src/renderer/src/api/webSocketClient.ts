import { FiredeckError } from '../../../shared/errors';
import type { AppCallName, AppEvent, AppParams, AppResult } from '../../../shared/app/contract';
import { WEB_API_PATH, type WebCallFrame, type WebServerFrame } from '../../../shared/app/webWire';
import { unwrap, type AppClient, type AppLink } from './appClient';

interface PendingCall {
  resolve: (value: unknown) => void;
  reject: (err: FiredeckError) => void;
}

export interface WebSocketClientOptions {
  /**
   * Called when a reopened socket is refused and the server says this page has no session with it (it was
   * started again since the page got its cookie): the page should load the server's explanation of which link
   * to open. Without it the client just keeps trying.
   */
  onSessionGone?: () => void;
}

/**
 * Web mode: calls and events over one WebSocket to the page's own origin (the session cookie authenticates
 * it). If the socket drops, pending calls fail and the socket is reopened with backoff.
 */
export function webSocketClient(location: Location, options: WebSocketClientOptions = {}): AppClient {
  const url = `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}${WEB_API_PATH}`;
  const listeners = new Set<(event: AppEvent) => void>();
  const linkListeners = new Set<(link: AppLink) => void>();
  /** Set once an open socket closed, until the next one opens: `lost` and `restored` are said once each. */
  let lost = false;
  const pending = new Map<number, PendingCall>();
  let queue: string[] = [];
  let socket: WebSocket | null = null;
  let open = false;
  let nextId = 1;
  let attempt = 0;
  let checkingSession = false;

  /** After a refused socket: a server that is up but does not know our cookie answers its pages with 401. */
  const checkSession = async (onGone: () => void): Promise<void> => {
    if (checkingSession) return;
    checkingSession = true;
    try {
      const res = await fetch(`${location.protocol}//${location.host}/`, {
        method: 'HEAD',
        cache: 'no-store',
        credentials: 'same-origin',
      });
      if (res.status === 401) onGone();
    } catch {
      // The server is down (or going): keep reopening the socket.
    } finally {
      checkingSession = false;
    }
  };

  const connect = (): void => {
    const ws = new WebSocket(url);
    socket = ws;
    ws.onopen = () => {
      open = true;
      attempt = 0;
      for (const frame of queue) ws.send(frame);
      queue = [];
      if (lost) {
        lost = false;
        for (const l of linkListeners) l('restored');
      }
    };
    ws.onmessage = (msg: MessageEvent<string>) => {
      const frame = JSON.parse(msg.data) as WebServerFrame;
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
    ws.onclose = () => {
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
      if (!wasOpen && options.onSessionGone) void checkSession(options.onSessionGone);
      attempt++;
      setTimeout(connect, Math.min(10_000, 250 * 2 ** attempt));
    };
  };
  connect();

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
