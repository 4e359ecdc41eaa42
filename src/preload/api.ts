import type { AppCallName, AppEnvelope, AppEvent, AppParams, AppResult } from '../shared/app/contract';

/**
 * What the preload exposes as `window.firedeck`: one named method per app call (nothing else reaches IPC),
 * plus a listener for pushed events. Errors come back inside the envelope, whole.
 */
export type FiredeckBridge = {
  readonly [N in AppCallName]: (params: AppParams<N>) => Promise<AppEnvelope<AppResult<N>>>;
} & {
  readonly onEvent: (listener: (event: AppEvent) => void) => () => void;
};

export const BRIDGE_GLOBAL = 'firedeck';
