import type { AppCallName, AppEnvelope, AppParams, AppResult } from '../../../shared/app/contract';
import type { FiredeckBridge } from '../../../preload/api';
import { unwrap, type AppClient } from './appClient';

/** Electron: calls go through the preload's named methods. */
export function ipcClient(bridge: FiredeckBridge): AppClient {
  return {
    transport: 'ipc',
    async call<N extends AppCallName>(name: N, params: AppParams<N>): Promise<AppResult<N>> {
      const method = bridge[name] as (p: AppParams<N>) => Promise<AppEnvelope<AppResult<N>>>;
      return unwrap(await method(params));
    },
    onEvent: (listener) => bridge.onEvent(listener),
  };
}
