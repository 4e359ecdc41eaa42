import {
  IPC_CALL_CHANNEL,
  IPC_EVENT_CHANNEL,
  appCallNames,
  type AppEvent,
  type FiredeckBridge,
} from '../shared/app/contract';

/** The few IPC operations the bridge needs; the preload passes Electron's, tests pass recorders. */
export interface IpcPort {
  invoke(channel: typeof IPC_CALL_CHANNEL, name: string, params: unknown): Promise<unknown>;
  on(channel: typeof IPC_EVENT_CHANNEL, listener: (payload: unknown) => void): () => void;
}

/** Builds the object the renderer sees: named methods only, each bound to one call name of the contract. */
export function buildBridge(ipc: IpcPort): FiredeckBridge {
  const api: Record<string, unknown> = {};
  for (const name of appCallNames) {
    api[name] = (params: unknown) => ipc.invoke(IPC_CALL_CHANNEL, name, params);
  }
  api.onEvent = (listener: (event: AppEvent) => void) =>
    ipc.on(IPC_EVENT_CHANNEL, (payload) => listener(payload as AppEvent));
  return Object.freeze(api) as unknown as FiredeckBridge;
}
