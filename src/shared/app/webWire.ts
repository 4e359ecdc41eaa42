import { z } from 'zod';
import type { AppEnvelope, AppEvent } from './contract';

/** Frames of web mode's WebSocket: the renderer sends calls, main answers them and pushes events. */
export const WebCallFrame = z.object({
  id: z.number().int().min(0),
  name: z.string().max(64),
  params: z.unknown(),
});
export type WebCallFrame = z.infer<typeof WebCallFrame>;

/** Main's frames: the answer to a call, or an event. Main made both, so the page types them, not parses them. */
export type WebServerFrame = { id: number; envelope: AppEnvelope<unknown> } | { event: AppEvent };

/** Path of the API socket. */
export const WEB_API_PATH = '/api';

/**
 * The cookie the printed link's token is exchanged for. Cookies ignore ports, so each web-mode instance names its
 * own: a second one on another port neither replaces nor reads this one's session.
 */
export function webSessionCookie(port: number): string {
  return `firedeck_session_${port}`;
}
