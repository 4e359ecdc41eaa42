import { errorFromApp } from '../../../shared/errors';
import type { AppCallName, AppEnvelope, AppEvent, AppParams, AppResult } from '../../../shared/app/contract';

/** The renderer's one way to main, whichever transport carries it. */
export interface AppClient {
  readonly transport: 'ipc' | 'websocket';
  call<N extends AppCallName>(name: N, params: AppParams<N>): Promise<AppResult<N>>;
  onEvent(listener: (event: AppEvent) => void): () => void;
  /** Electron only: the MessagePort main transferred for a channel this window opened, which carries its bytes. */
  channelPort?(channelId: string): Promise<MessagePort>;
  /**
   * Web mode only: the page's link to main was `lost` (every call and channel of this page ended with it:
   * main closes what a session owned) or is `restored` (events missed meanwhile are not replayed).
   */
  onLink?(listener: (link: AppLink) => void): () => void;
}

export type AppLink = 'lost' | 'restored';

/** A call's outcome: its value, or its error thrown as a FiredeckError (kind, hint and details kept). */
export function unwrap<T>(envelope: AppEnvelope<T>): T {
  if (envelope.ok) return envelope.value;
  throw errorFromApp(envelope.error);
}
