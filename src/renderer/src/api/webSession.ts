import {
  WEB_SESSION_PATH,
  WEB_SESSION_STORAGE_KEY,
  WebSessionAnswer,
  type WebSessionRequest,
} from '../../../shared/app/webWire';

/** What a web-mode page needs of its window to find its session. */
export interface WebSessionWindow {
  location: Pick<Location, 'href' | 'protocol' | 'host'>;
  history: Pick<History, 'replaceState' | 'state'>;
  localStorage: Pick<Storage, 'getItem' | 'setItem' | 'removeItem'>;
}

/**
 * Web mode's session secret, for the API socket to present (ARCHITECTURE.md, "Web mode"). A page opened with the
 * printed link (`?token=…`) drops the token from its address bar at once and trades it, with a POST from its own
 * origin, for the server's session secret, which it keeps in its origin's `localStorage`: scoped by scheme, host
 * and port, so no other listener on 127.0.0.1 ever receives it (a cookie would go to all of them). A reload, or
 * the bare address in another tab of the same browser, finds it there; a stale one is refused on the socket.
 *
 * Returns a function that answers the secret to present, or null when the page has none (the caller shows the
 * explanation of which link to open).
 */
export function webSession(win: WebSessionWindow): () => Promise<string | null> {
  const here = new URL(win.location.href);
  const token = here.searchParams.get('token');
  let trade: Promise<void> | null = null;
  if (token !== null) {
    here.searchParams.delete('token');
    win.history.replaceState(win.history.state, '', here.pathname + here.search + here.hash);
    trade = tradeToken(win, token);
  }
  return async () => {
    if (trade) await trade;
    return win.localStorage.getItem(WEB_SESSION_STORAGE_KEY);
  };
}

async function tradeToken(win: WebSessionWindow, token: string): Promise<void> {
  const body: WebSessionRequest = { token };
  let res: Response;
  try {
    res = await fetch(`${win.location.protocol}//${win.location.host}${WEB_SESSION_PATH}`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify(body),
      cache: 'no-store',
      credentials: 'omit',
    });
  } catch {
    // The server went away between serving the page and the trade: the socket's retries find out what is next.
    return;
  }
  if (res.ok) {
    win.localStorage.setItem(WEB_SESSION_STORAGE_KEY, WebSessionAnswer.parse(await res.json()).session);
  } else if (res.status === 401) {
    // The server was started again since it served this page: what is stored is of no use either.
    win.localStorage.removeItem(WEB_SESSION_STORAGE_KEY);
  }
}
