import { BRIDGE_GLOBAL, type FiredeckBridge } from '../../../shared/app/contract';
import type { AppClient } from './appClient';
import { ipcClient } from './ipcClient';
import { webSocketClient } from './webSocketClient';

/**
 * IPC when the preload put its bridge on the window (Electron), else web mode's WebSocket; a web page whose
 * session the server no longer knows (it was started again) loads the server's page saying which link to open.
 */
export function pickClient(win: Window): AppClient {
  const bridge = (win as unknown as Record<string, FiredeckBridge | undefined>)[BRIDGE_GLOBAL];
  return bridge ? ipcClient(bridge) : webSocketClient(win.location, { onSessionGone: () => win.location.assign('/') });
}
