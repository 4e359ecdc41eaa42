import { BRIDGE_GLOBAL, type FiredeckBridge } from '../../../shared/app/contract';
import type { AppClient } from './appClient';
import { ipcClient } from './ipcClient';
import { webSession } from './webSession';
import { webSocketClient } from './webSocketClient';
import { WEB_NO_SESSION_PATH } from '../../../shared/app/webWire';

/**
 * IPC when the preload put its bridge on the window (Electron), else web mode's WebSocket with the page's session;
 * a web page without one, or whose session the server no longer knows (it was started again), loads the server's
 * page saying which link to open.
 */
export function pickClient(win: Window): AppClient {
  const bridge = (win as unknown as Record<string, FiredeckBridge | undefined>)[BRIDGE_GLOBAL];
  if (bridge) return ipcClient(bridge);
  return webSocketClient(win.location, {
    session: webSession(win),
    onSessionGone: () => win.location.assign(WEB_NO_SESSION_PATH),
  });
}
