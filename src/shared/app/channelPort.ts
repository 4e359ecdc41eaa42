import { z } from 'zod';
import { AppError, ChannelId } from './contract';

/**
 * Electron carries a channel's bytes on a MessagePort of its own instead of base64 events: main transfers one
 * port per opened channel to the window that opened it, the preload hands it on to the page. Both ends
 * validate what they receive with these schemas.
 */

/** The largest write one port message may carry; the renderer splits bigger writes. */
export const CHANNEL_PORT_MAX_WRITE = 256 * 1024;

/** Renderer → main. */
export const ChannelPortInbound = z.discriminatedUnion('type', [
  z.object({
    type: z.literal('write'),
    data: z.instanceof(Uint8Array).refine((bytes) => bytes.byteLength <= CHANNEL_PORT_MAX_WRITE, 'write too large'),
  }),
  /** Bytes the renderer consumed; main resumes a paused stream when enough were acknowledged. */
  z.object({ type: z.literal('ack'), bytes: z.number().int().min(1).max(Number.MAX_SAFE_INTEGER) }),
  z.object({
    type: z.literal('resize'),
    cols: z.number().int().min(1).max(1000),
    rows: z.number().int().min(1).max(1000),
  }),
  z.object({ type: z.literal('close') }),
]);
export type ChannelPortInbound = z.infer<typeof ChannelPortInbound>;

/** Main → renderer: channel output as a bare `Uint8Array`, or this once, just before main closes its end. */
export const ChannelPortClosed = z.object({ type: z.literal('closed'), error: AppError.nullable() });
export type ChannelPortClosed = z.infer<typeof ChannelPortClosed>;
export const ChannelPortOutbound = z.union([z.instanceof(Uint8Array), ChannelPortClosed]);
export type ChannelPortOutbound = z.infer<typeof ChannelPortOutbound>;

/** What travels with the port: from main to the preload on IPC, and from the preload to the page. */
export const ChannelPortNotice = z.object({ channelId: ChannelId }).strict();
export type ChannelPortNotice = z.infer<typeof ChannelPortNotice>;

/** The `type` of the window message in which the preload hands a channel's port to the page. */
export const CHANNEL_PORT_WINDOW_MESSAGE = 'firedeck:channel-port';
export const ChannelPortWindowMessage = z
  .object({ type: z.literal(CHANNEL_PORT_WINDOW_MESSAGE), channelId: ChannelId })
  .strict();
export type ChannelPortWindowMessage = z.infer<typeof ChannelPortWindowMessage>;
