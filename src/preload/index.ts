import { contextBridge, ipcRenderer, type IpcRendererEvent } from 'electron';
import { BRIDGE_GLOBAL, IPC_CHANNEL_PORT_CHANNEL } from '../shared/app/contract';
import { buildBridge } from './bridge';
import { PAGE_ORIGIN, relayChannelPort } from './channelPortRelay';

// Sandboxed preload: only the bridge's named methods reach the page; ipcRenderer itself never does.
contextBridge.exposeInMainWorld(
  BRIDGE_GLOBAL,
  buildBridge({
    invoke: (channel, name, params) => ipcRenderer.invoke(channel, name, params),
    on: (channel, listener) => {
      const wrapped = (_event: IpcRendererEvent, payload: unknown): void => listener(payload);
      ipcRenderer.on(channel, wrapped);
      return () => ipcRenderer.removeListener(channel, wrapped);
    },
  }),
);

// The preload is type-checked without the DOM library; this is the one DOM call it makes.
const page = globalThis as unknown as {
  postMessage(message: unknown, targetOrigin: string, transfer: readonly unknown[]): void;
};

// A channel's bytes arrive on a MessagePort of its own, which the page gets from here, not through the bridge.
ipcRenderer.on(IPC_CHANNEL_PORT_CHANNEL, (event: IpcRendererEvent, payload: unknown) => {
  relayChannelPort(payload, event.ports, (message, transfer) => page.postMessage(message, PAGE_ORIGIN, transfer));
});
