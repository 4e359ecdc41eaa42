import { z } from 'zod';
import { AppError } from '../errors';
import { DaemonInfo } from '../protocol/daemon';
import { EventEnvelope } from '../protocol/events';

/**
 * The renderer↔main contract. One declaration per call, served by Electron IPC (through the preload's one
 * object) and by web mode's WebSocket; both ends validate with these schemas.
 */
export interface AppCallDef<P extends z.ZodType, R extends z.ZodType> {
  readonly name: string;
  readonly params: P;
  readonly result: R;
}

function call<const N extends string, P extends z.ZodType, R extends z.ZodType>(
  name: N,
  params: P,
  result: R,
): AppCallDef<P, R> & { readonly name: N } {
  return { name, params, result };
}

/** The embedded default host: the local firedeckd, reached without SSH. */
export const LOCAL_HOST_ID = 'local';

export const HostId = z.string().regex(/^(local|h-[0-9a-f]{8,32})$/, 'not a host id');

export const HostAuth = z.discriminatedUnion('type', [
  z.object({ type: z.literal('agent') }),
  z.object({ type: z.literal('keyFile'), path: z.string().min(1).max(4096) }),
]);
export type HostAuth = z.infer<typeof HostAuth>;

const HostName = z.string().trim().min(1).max(64);
const HostAddress = z
  .string()
  .trim()
  .min(1)
  .max(253)
  .regex(/^[A-Za-z0-9.:[\]-]+$/, 'address must be a host name or an IP address');
const SshUser = z
  .string()
  .trim()
  .regex(/^[a-z_][a-z0-9_.-]{0,31}$/, 'user must be a Unix user name');

export const Host = z.object({
  id: HostId,
  name: z.string(),
  /** `local` for the embedded default host, else `ssh`. */
  kind: z.enum(['local', 'ssh']),
  address: z.string(),
  port: z.number().int(),
  user: z.string(),
  auth: HostAuth.nullable(),
  /** `SHA256:…` of the pinned host key; null until the operator trusted one. */
  hostKeyFingerprint: z.string().nullable(),
});
export type Host = z.infer<typeof Host>;

export const HostInput = z.object({
  name: HostName,
  address: HostAddress,
  port: z.number().int().min(1).max(65535).default(22),
  user: SshUser,
  // Main reads the key file: a relative path would depend on where the app happened to start.
  auth: HostAuth.refine((a) => a.type !== 'keyFile' || a.path.startsWith('/') || a.path.startsWith('~/'), {
    message: 'the key file needs an absolute path, or one starting with ~/',
  }),
});
export type HostInput = z.input<typeof HostInput>;
/** A host's settings once main checked them (trimmed, port defaulted). */
export type CheckedHostInput = z.output<typeof HostInput>;

export const ConnectionState = z.enum(['disconnected', 'connecting', 'connected', 'reconnecting', 'failed']);
export type ConnectionState = z.infer<typeof ConnectionState>;

/** An error in the form the UI shows (declared with the other error conversions in src/shared/errors.ts). */
export { AppError };

export const HostStatus = z.object({
  hostId: HostId,
  state: ConnectionState,
  info: DaemonInfo.nullable(),
  error: AppError.nullable(),
  /** Attempt number while reconnecting, and when the next one starts. */
  attempt: z.number().int(),
  nextAttemptAt: z.string().nullable(),
});
export type HostStatus = z.infer<typeof HostStatus>;

export const HostRef = z.object({ hostId: HostId });

export const ChannelKind = z.enum(['console', 'shell', 'vnc']);
export type ChannelKind = z.infer<typeof ChannelKind>;

export const ChannelOpenParams = z.object({
  hostId: HostId,
  kind: ChannelKind,
  vmId: z.string().regex(/^vm-[0-9a-f]{8,32}$/),
  /** Console: keep streaming new output. */
  follow: z.boolean().optional(),
  cols: z.number().int().min(1).max(1000).optional(),
  rows: z.number().int().min(1).max(1000).optional(),
});
export type ChannelOpenParams = z.infer<typeof ChannelOpenParams>;
export const ChannelId = z.string().regex(/^ch-[0-9a-f]{16,64}$/);

export const appCalls = {
  'app.info': call(
    'app.info',
    z.object({}).strict(),
    z.object({ mode: z.enum(['electron', 'web']), version: z.string() }),
  ),
  'hosts.list': call('hosts.list', z.object({}).strict(), z.array(Host)),
  'hosts.add': call('hosts.add', HostInput, Host),
  'hosts.update': call('hosts.update', z.object({ hostId: HostId, host: HostInput }), Host),
  'hosts.remove': call('hosts.remove', HostRef, z.object({ ok: z.literal(true) })),
  'hosts.statuses': call('hosts.statuses', z.object({}).strict(), z.array(HostStatus)),
  /** Fails with `host_key_unknown` (details: fingerprint) until the operator trusts the key the host presented. */
  'hosts.connect': call('hosts.connect', HostRef, HostStatus),
  /** Pins the key the host presented on the last connect, if its fingerprint is `fingerprint`, then connects. */
  'hosts.trustHostKey': call(
    'hosts.trustHostKey',
    z.object({ hostId: HostId, fingerprint: z.string().regex(/^SHA256:[A-Za-z0-9+/]{43}$/) }),
    HostStatus,
  ),
  'hosts.disconnect': call('hosts.disconnect', HostRef, HostStatus),
  /**
   * Connects every host (the local one and each saved host) at once; one host's failure is its own status, never
   * the call's: the answer is every host's status once each attempt has settled.
   */
  'hosts.connectAll': call('hosts.connectAll', z.object({}).strict(), z.array(HostStatus)),
  /** Any daemon RPC method on a connected host; main validates params and result with the daemon's schemas. */
  'daemon.call': call(
    'daemon.call',
    z.object({ hostId: HostId, method: z.string().min(1).max(128), params: z.unknown() }),
    z.unknown(),
  ),
  'channels.open': call('channels.open', ChannelOpenParams, z.object({ channelId: ChannelId })),
  /** Bytes the renderer consumed; main resumes a paused stream when enough were acknowledged. */
  'channels.ack': call('channels.ack', z.object({ channelId: ChannelId, bytes: z.number().int().min(0) }), z.null()),
  'channels.write': call(
    'channels.write',
    z.object({ channelId: ChannelId, data: z.string().max(1024 * 1024), encoding: z.enum(['utf8', 'base64']) }),
    z.null(),
  ),
  'channels.resize': call(
    'channels.resize',
    z.object({
      channelId: ChannelId,
      cols: z.number().int().min(1).max(1000),
      rows: z.number().int().min(1).max(1000),
    }),
    z.null(),
  ),
  'channels.close': call('channels.close', z.object({ channelId: ChannelId }), z.null()),
} as const;

export type AppCalls = typeof appCalls;
export type AppCallName = keyof AppCalls;
export type AppParams<N extends AppCallName> = z.input<AppCalls[N]['params']>;
export type AppResult<N extends AppCallName> = z.output<AppCalls[N]['result']>;
export const appCallNames = Object.keys(appCalls) as AppCallName[];

export function isAppCallName(name: unknown): name is AppCallName {
  return typeof name === 'string' && Object.prototype.hasOwnProperty.call(appCalls, name);
}

/** How a call's outcome crosses IPC or the WebSocket: errors travel whole (kind, hint, details). */
export type AppEnvelope<T> = { ok: true; value: T } | { ok: false; error: AppError };

/** Pushed from main to the renderer. */
export const AppEvent = z.discriminatedUnion('type', [
  z.object({ type: z.literal('host.status'), status: HostStatus }),
  z.object({ type: z.literal('hosts.changed') }),
  z.object({ type: z.literal('daemon.event'), hostId: HostId, envelope: EventEnvelope }),
  /** Channel output; `data` is base64 so VNC's binary and a console's text travel the same way. */
  z.object({ type: z.literal('channel.data'), channelId: ChannelId, data: z.string() }),
  z.object({ type: z.literal('channel.closed'), channelId: ChannelId, error: AppError.nullable() }),
]);
export type AppEvent = z.infer<typeof AppEvent>;

/**
 * What the preload exposes as `window.firedeck` ({@link BRIDGE_GLOBAL}): one named method per app call (nothing
 * else reaches IPC), plus a listener for pushed events. Errors come back inside the envelope, whole. The preload
 * builds it and the renderer calls it, both from this one declaration.
 */
export type FiredeckBridge = {
  readonly [N in AppCallName]: (params: AppParams<N>) => Promise<AppEnvelope<AppResult<N>>>;
} & {
  readonly onEvent: (listener: (event: AppEvent) => void) => () => void;
};

/** The window property the preload puts the bridge on. */
export const BRIDGE_GLOBAL = 'firedeck';

/** The one IPC channel name the preload may use for calls, and the one it listens on for events. */
export const IPC_CALL_CHANNEL = 'firedeck:call';
export const IPC_EVENT_CHANNEL = 'firedeck:event';
/** Electron: main transfers each opened channel's MessagePort to its window on this channel (see channelPort.ts). */
export const IPC_CHANNEL_PORT_CHANNEL = 'firedeck:channel-port';
