import { z } from 'zod';
import type { AppEnvelope, AppEvent } from './contract';

/**
 * Frames of web mode's WebSocket: the renderer sends its hello (the session), then calls; main answers them and
 * pushes events.
 */
export const WebCallFrame = z.object({
  id: z.number().int().min(0),
  name: z.string().max(64),
  params: z.unknown(),
});
export type WebCallFrame = z.infer<typeof WebCallFrame>;

/** Main's frames: the answer to a call, or an event. Main made both, so the page types them, not parses them. */
export type WebServerFrame =
  | { id: number; envelope: AppEnvelope<unknown> }
  | { event: AppEvent }
  /** Sent once, after the hello frame presented the session: calls may follow. */
  | { ready: true };

/** Path of the API socket. */
export const WEB_API_PATH = '/api';

/**
 * Web mode's session (ARCHITECTURE.md, "Web mode"). The printed link's token is good until its server stops; the
 * page trades it, with a POST to `WEB_SESSION_PATH` from its own origin, for the server's session secret, keeps
 * that in the origin's `localStorage` (which, unlike a cookie, is scoped by port: another listener on 127.0.0.1
 * never receives it) and presents it as the first frame on every API socket. No cookie is used.
 */
export const WEB_SESSION_PATH = '/session';

/** The page that says which link to open, for a tab without a session (`explanationPage('no-session')`). */
export const WEB_NO_SESSION_PATH = '/no-session';

/** Where the page keeps its session secret: `localStorage` of its own origin (scheme, host and port). */
export const WEB_SESSION_STORAGE_KEY = 'firedeck.webSession';

/** The token trade's request body, and its answer. */
export const WebSessionRequest = z.object({ token: z.string().max(256) });
export type WebSessionRequest = z.infer<typeof WebSessionRequest>;
export const WebSessionAnswer = z.object({ session: z.string().min(1).max(256) });
export type WebSessionAnswer = z.infer<typeof WebSessionAnswer>;

/** The first frame on an API socket: the session secret. Nothing else is read before it. */
export const WebHelloFrame = z.object({ session: z.string().max(256) });
export type WebHelloFrame = z.infer<typeof WebHelloFrame>;

/**
 * Close code of an API socket whose first frame did not present this server's session (missing, malformed, from
 * an earlier start of web mode, or not sent in time): the page has no session and should show the explanation.
 */
export const WEB_NO_SESSION_CLOSE = 4401;
