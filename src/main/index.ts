import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import {
  app,
  BrowserWindow,
  dialog,
  ipcMain,
  MessageChannelMain,
  session,
  shell,
  type IpcMainInvokeEvent,
} from 'electron';
import { FiredeckError, toAppError } from '../shared/errors';
import type { ChannelPortNotice } from '../shared/app/channelPort';
import {
  IPC_CALL_CHANNEL,
  IPC_CHANNEL_PORT_CHANNEL,
  IPC_EVENT_CHANNEL,
  type AppEvent,
  type AppResult,
} from '../shared/app/contract';
import { AppService, type CallContext } from './app/appService';
import { RENDERER_CSP } from './app/csp';
import { ChannelPorts, dispatchChannelControl, fromMessagePortMain } from './electron/channelPorts';
import { hardenWebContents, permissionAllowed } from './electron/hardening';
import { isTrustedIpcEvent, mainWindowOptions } from './electron/windowOptions';
import { HostRegistry } from './hosts/hostRegistry';
import { openLocalStore } from './hosts/localStore';

/** The Electron main process's one wiring file: services from src/main, Electron glue kept thin here. */
const here = path.dirname(fileURLToPath(import.meta.url));
const rendererFile = path.join(here, '../renderer/index.html');
const rendererUrl = pathToFileURL(rendererFile).href;
const preloadFile = path.join(here, '../preload/index.cjs');

app.enableSandbox();
// FIREDECK_DATA_DIR moves everything the app keeps (store, Chromium profile) into one dir, e.g. for the e2e tests.
const dataDirOverride = process.env.FIREDECK_DATA_DIR;
if (dataDirOverride) app.setPath('userData', path.join(dataDirOverride, 'electron'));

app.on('web-contents-created', (_event, contents) =>
  hardenWebContents(contents, (url) => void shell.openExternal(url)),
);

app.on('window-all-closed', () => app.quit());

/** A start that cannot go on (e.g. an unreadable host store) says why in a dialog and quits, not silently. */
function failStartup(err: unknown): void {
  const e = FiredeckError.from(err);
  dialog.showErrorBox('Firedeck cannot start', e.hint ? `${e.message}\n\n${e.hint}` : e.message);
  app.exit(1);
}

void app
  .whenReady()
  .then(() => {
    session.defaultSession.setPermissionRequestHandler((_wc, permission, callback, details) =>
      callback(permissionAllowed(permission, details.requestingUrl, rendererUrl)),
    );
    session.defaultSession.setPermissionCheckHandler((_wc, permission, requestingOrigin, details) =>
      permissionAllowed(permission, details.requestingUrl ?? requestingOrigin, rendererUrl),
    );
    session.defaultSession.webRequest.onHeadersReceived((details, callback) => {
      callback({ responseHeaders: { ...details.responseHeaders, 'Content-Security-Policy': [RENDERER_CSP] } });
    });

    const db = openLocalStore(dataDirOverride ?? path.join(app.getPath('userData'), 'store'));
    const localDaemon = process.env.FIREDECK_LOCAL_DAEMON;
    const service = new AppService({
      mode: 'electron',
      registry: new HostRegistry(db),
      localDaemonCommand: localDaemon && localDaemon.trim() !== '' ? localDaemon : null,
    });

    const win = new BrowserWindow(mainWindowOptions(preloadFile));
    const sessionId = `window-${win.webContents.id}`;
    const emit = (event: AppEvent): void => {
      if (!win.isDestroyed()) win.webContents.send(IPC_EVENT_CHANNEL, event);
    };
    const unsubscribe = service.onBroadcast(emit);
    // Channel bytes travel on a MessagePort per channel, not as events: channel output goes to the ports.
    const ports = new ChannelPorts(
      dispatchChannelControl((name, params) => service.dispatch(name, params, ctx)),
      (channelId, reason) => console.warn(`Refused a message on the port of ${channelId}: ${reason}`),
    );
    const ctx: CallContext = { sessionId, emit, channelOutput: ports };

    ipcMain.handle(IPC_CALL_CHANNEL, async (event: IpcMainInvokeEvent, name: unknown, params: unknown) => {
      if (!isTrustedIpcEvent(event, win.webContents, rendererUrl)) {
        return {
          ok: false,
          error: toAppError(new FiredeckError('permission_denied', 'IPC from an unexpected frame was refused')),
        };
      }
      const outcome = await service.dispatch(name, params, ctx);
      if (name === 'channels.open' && outcome.ok && !win.isDestroyed()) {
        // main's own answer to channels.open: typed, not parsed again.
        const { channelId } = outcome.value as AppResult<'channels.open'>;
        const { port1, port2 } = new MessageChannelMain();
        ports.attach(channelId, fromMessagePortMain(port1));
        const notice: ChannelPortNotice = { channelId };
        win.webContents.postMessage(IPC_CHANNEL_PORT_CHANNEL, notice, [port2]);
      }
      return outcome;
    });

    win.once('ready-to-show', () => win.show());
    win.on('closed', () => {
      unsubscribe();
      service.endSession(sessionId);
      ports.closeAll();
    });
    void win.loadFile(rendererFile);
    service.connectAtStart();

    app.once('before-quit', () => {
      service.shutdown();
      db.close();
    });
  })
  .catch(failStartup);
