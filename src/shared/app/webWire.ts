import { z } from 'zod';
import { AppError } from './contract';

/** Frames of web mode's WebSocket: the renderer sends calls, main answers them and pushes events. */
export const WebCallFrame = z.object({
  id: z.number().int().min(0),
  name: z.string().max(64),
  params: z.unknown(),
});
export type WebCallFrame = z.infer<typeof WebCallFrame>;

export const WebServerFrame = z.union([
  z.object({
    id: z.number().int(),
    envelope: z.union([
      z.object({ ok: z.literal(true), value: z.unknown() }),
      z.object({ ok: z.literal(false), error: AppError }),
    ]),
  }),
  z.object({ event: z.unknown() }),
]);
export type WebServerFrame = z.infer<typeof WebServerFrame>;

/** Path of the API socket, and of the cookie the one-time token is exchanged for. */
export const WEB_API_PATH = '/api';
export const WEB_SESSION_COOKIE = 'firedeck_session';
