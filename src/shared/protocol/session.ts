import { z } from 'zod';
import { encodeFrame } from '../rpc/framing';
import { notificationFrame } from '../rpc/jsonrpc';

/**
 * `session.hello`: the first frame a dialer (`firedeckd dial-stdio`, the host CLI's RPC and channel clients)
 * sends on a connection to the daemon's socket, naming the user it runs as. A notification, never answered and
 * never a method: no handler sees it. Only the first one on a connection counts, so bytes passed on from the
 * far end of an SSH link cannot rename the caller the audit log records.
 */
export const SESSION_HELLO_METHOD = 'session.hello';

const HelloUser = z.string().regex(/^[A-Za-z0-9._-]{1,64}$/, 'a Unix user name');
const HelloUid = z.number().int().min(0);

export const SessionHelloParams = z.object({ user: HelloUser, uid: HelloUid }).strict();
export type SessionHelloParams = z.infer<typeof SessionHelloParams>;

/** Who is on the other end of a connection, as its hello said; what it did not say (well) stays unknown. */
export interface SessionCaller {
  user: string;
  uid: number | null;
}

/** A connection that sent no hello (yet). */
export const UNKNOWN_CALLER: SessionCaller = Object.freeze({ user: 'unknown', uid: null });

/** The dialer's side: the hello as one encoded frame, to be written before anything else. */
export function sessionHelloFrame(hello: SessionHelloParams): string {
  return encodeFrame(notificationFrame(SESSION_HELLO_METHOD, hello));
}

/**
 * The daemon's side: the caller a hello's params name. Never throws: a field that fails its schema (a user
 * name outside the portable set, a negative uid) is unknown, the other one is still taken.
 */
export function callerFromHello(params: unknown): SessionCaller {
  const whole = SessionHelloParams.safeParse(params);
  if (whole.success) return whole.data;
  const fields = typeof params === 'object' && params !== null ? (params as Record<string, unknown>) : {};
  const user = HelloUser.safeParse(fields.user);
  const uid = HelloUid.safeParse(fields.uid);
  return { user: user.success ? user.data : UNKNOWN_CALLER.user, uid: uid.success ? uid.data : null };
}
