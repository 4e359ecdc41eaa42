import fs from 'node:fs';
import net from 'node:net';
import { randomUUID } from 'node:crypto';
import type { z } from 'zod';
import { FiredeckError } from '../../../src/shared/errors';
import { LineFramer, encodeFrame } from '../../../src/shared/rpc/framing';
import {
  classifyServerFrame,
  failureFrame,
  notificationFrame,
  successFrame,
  type RpcId,
} from '../../../src/shared/rpc/jsonrpc';
import { CHANNEL_OPEN_METHOD } from '../../../src/shared/protocol/channel';
import { userName } from '../system/users';
import { IdempotentCalls } from './idempotency';
import { loadPeerCredentials, type PeerCredentialReader, type PeerCredentials } from './peerCredentials';
import { callerFromHello, SESSION_HELLO_METHOD } from '../../../src/shared/protocol/session';
import {
  isMethodName,
  methods,
  type MethodName,
  type Methods,
  type ResultOf,
} from '../../../src/shared/protocol/methods';

/**
 * Who is on the other end of a connection: the kernel's word (SO_PEERCRED, read when the connection is
 * accepted), never the client's. A group member whose `session.hello` claims to be root is still themselves.
 */
export interface Caller {
  /** The uid's name in /etc/passwd, or the uid in digits when it has none. */
  user: string;
  uid: number;
  gid: number;
  /** The process that connected (e.g. `firedeckd dial-stdio` under sshd), as it was at connect time. */
  pid: number;
  /** What the client's first `session.hello` said it was, if it sent one: logged when it differs, never trusted. */
  claimed: { user: string; uid: number | null } | null;
}

export interface CallContext {
  connection: RpcConnection;
  caller: Caller;
}

export type Handler<M extends MethodName> = (
  params: z.output<Methods[M]['params']>,
  ctx: CallContext,
) => Promise<ResultOf<M>> | ResultOf<M>;

export interface CallRecord {
  method: MethodName;
  caller: Caller;
  params: unknown;
  ok: boolean;
  error: FiredeckError | null;
}

export interface RpcServerOptions {
  /** Called after every mutating call, successful or not (the audit log). */
  onMutatingCall?: (record: CallRecord) => void;
  /** A subscriber whose unsent output exceeds this is disconnected rather than buffered without bound. */
  maxBufferedBytes?: number;
  log?: (line: string) => void;
  /** Who connected (the kernel's word); by default the peer-credentials addon, and without it no server. */
  peerCredentials?: PeerCredentialReader;
}

/**
 * Takes over a connection whose request is `channel.open` (src/shared/protocol/channel.ts): answers it and
 * carries the channel's frames on the same socket from then on.
 */
export type ChannelOpener = (socket: net.Socket, id: string | number, params: unknown, caller: Caller) => void;

/**
 * Calls one connection may have in flight: a call beyond it is refused with `resource_exhausted` at once, so a
 * client cannot make the daemon hold an unbounded queue of pending calls (and their waiters).
 */
export const MAX_CALLS_IN_FLIGHT = 64;

/**
 * How often a connection whose client ended its side, with calls still in flight, is checked for a client that
 * has gone altogether: only a write tells (it fails, and the connection closes, ending its calls' waiters).
 */
export const PEER_PROBE_INTERVAL_MS = 10_000;

/** One client connection: frames in, responses and notifications out, closed on overflow. */
export class RpcConnection {
  readonly id = randomUUID();
  /** Set by the first `session.hello`; later ones are ignored. */
  helloSeen = false;
  /** Settles when the client has ended its side (no more requests); replies and events may still go out. */
  readonly inputEnded: Promise<void>;
  private readonly closeHandlers = new Set<() => void>();
  private closed = false;
  private readonly closing = new AbortController();

  constructor(
    private readonly socket: net.Socket,
    private readonly maxBufferedBytes: number,
    readonly caller: Caller,
  ) {
    this.inputEnded = new Promise((resolve) => socket.once('end', () => resolve()));
    socket.on('close', () => {
      this.closed = true;
      this.closing.abort();
      for (const h of this.closeHandlers) h();
      this.closeHandlers.clear();
    });
  }

  /** Aborted when the connection closes: work done for its calls only (a waiter, a timer) ends with it. */
  get signal(): AbortSignal {
    return this.closing.signal;
  }

  get isClosed(): boolean {
    return this.closed;
  }

  onClose(handler: () => void): () => void {
    if (this.closed) {
      handler();
      return () => undefined;
    }
    this.closeHandlers.add(handler);
    return () => this.closeHandlers.delete(handler);
  }

  send(frame: string): void {
    if (this.closed || this.socket.writableEnded) return;
    if (this.socket.writableLength > this.maxBufferedBytes) {
      // A reader that stopped reading would make us hold its events forever: cut it off instead.
      this.socket.destroy(new Error('client too slow: output buffer exceeded'));
      return;
    }
    this.socket.write(encodeFrame(frame));
  }

  notify(method: string, params: unknown): void {
    this.send(notificationFrame(method, params));
  }
}

/** JSON-RPC 2.0 over newline-delimited frames on a unix socket. */
export class RpcServer {
  private readonly handlers = new Map<MethodName, Handler<MethodName>>();
  /** Mutating calls sent with an idempotency key, for a repeat after a lost answer. */
  private readonly idempotent = new IdempotentCalls();
  private server: net.Server | null = null;
  private readonly connections = new Set<net.Socket>();
  private readonly maxBufferedBytes: number;
  private channelOpener: ChannelOpener | null = null;
  private readonly peerCredentials: PeerCredentialReader;

  /** Throws `unavailable` (with the fix) when the peer-credentials addon cannot be loaded. */
  constructor(private readonly options: RpcServerOptions = {}) {
    this.maxBufferedBytes = options.maxBufferedBytes ?? 16 * 1024 * 1024;
    this.peerCredentials = options.peerCredentials ?? loadPeerCredentials();
  }

  register<M extends MethodName>(name: M, handler: Handler<M>): void {
    if (this.handlers.has(name)) throw new Error(`handler for ${name} registered twice`);
    this.handlers.set(name, handler as unknown as Handler<MethodName>);
  }

  /** Lets `channel.open` requests take over their connection. */
  registerChannelOpener(opener: ChannelOpener): void {
    this.channelOpener = opener;
  }

  /** Listens on `socketPath` (replacing a stale socket file) with the given mode and group. */
  async listen(socketPath: string, mode = 0o660, gid: number | null = null): Promise<void> {
    if (fs.existsSync(socketPath)) {
      const live = await new Promise<boolean>((resolve) => {
        const probe = net.connect(socketPath);
        probe.once('connect', () => {
          probe.destroy();
          resolve(true);
        });
        probe.once('error', () => resolve(false));
      });
      if (live) {
        throw new FiredeckError('conflict', `Another firedeckd is already serving ${socketPath}`, {
          hint: 'Stop the other daemon (systemctl stop firedeckd) or pass --socket with another path.',
        });
      }
      fs.unlinkSync(socketPath);
    }
    // Half-open: a client that ends its side (dial-stdio whose stdin ended) still gets every reply in flight.
    const server = net.createServer({ allowHalfOpen: true }, (socket) => this.accept(socket));
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      // Create the socket with no access for others, then open it up to the group.
      const oldUmask = process.umask(0o177);
      server.listen(socketPath, () => {
        process.umask(oldUmask);
        resolve();
      });
    });
    if (gid !== null) fs.chownSync(socketPath, process.getuid?.() ?? 0, gid);
    fs.chmodSync(socketPath, mode);
  }

  async close(): Promise<void> {
    for (const s of this.connections) s.destroy();
    const server = this.server;
    this.server = null;
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  private accept(socket: net.Socket): void {
    let peer: PeerCredentials;
    try {
      peer = this.peerCredentials(socket);
    } catch (err) {
      // Nobody is served without a name the kernel vouches for.
      this.options.log?.(`refused a connection: no peer credentials: ${describe(err)}`);
      socket.destroy();
      return;
    }
    this.connections.add(socket);
    const connection = new RpcConnection(socket, this.maxBufferedBytes, callerOf(peer));
    const framer = new LineFramer();
    // Calls still being handled; once the client has ended its side, this side ends after the last reply.
    let inFlight = 0;
    let inputEnded = false;
    let channel = false;
    const endWhenAnswered = (): void => {
      if (inputEnded && inFlight === 0 && !socket.writableEnded) socket.end();
    };
    const onData = (chunk: Buffer): void => {
      const events = framer.push(chunk);
      for (const [i, ev] of events.entries()) {
        if (ev.type === 'oversized') {
          connection.send(failureFrame(null, ev.error));
          continue;
        }
        const open = this.channelOpener ? channelOpenRequest(ev.text) : null;
        if (!open) {
          if (inFlight >= MAX_CALLS_IN_FLIGHT && refuseOverCap(connection, ev.text)) continue;
          inFlight++;
          void this.handleFrame(connection, ev.text).finally(() => {
            inFlight--;
            endWhenAnswered();
          });
          continue;
        }
        // From here on the connection carries the channel's binary frames, which the line framer must not see.
        socket.off('data', onData);
        socket.pause();
        channel = true;
        if (i !== events.length - 1 || chunk[chunk.length - 1] !== 0x0a) {
          connection.send(
            failureFrame(
              open.id,
              new FiredeckError('invalid_request', 'Send nothing after channel.open before its reply'),
            ),
          );
          socket.end();
          return;
        }
        this.channelOpener!(socket, open.id, open.params, connection.caller);
        return;
      }
    };
    socket.on('data', onData);
    let probe: NodeJS.Timeout | null = null;
    // A blank line is no frame to any client (the line framer skips it); to a client that is gone it is EPIPE.
    const probePeer = (): void => {
      if (!socket.writableEnded && !socket.destroyed) socket.write('\n');
    };
    socket.on('end', () => {
      inputEnded = true;
      // A channel's client sends end of input as an `eof` frame; ending its side of the socket detaches.
      if (channel) {
        if (!socket.writableEnded) socket.end();
        return;
      }
      endWhenAnswered();
      if (socket.writableEnded) return;
      // The client may only have ended its side (dial-stdio whose stdin ended) or have closed the socket: the
      // kernel says which only when this side writes. A closed client's calls then end with the connection.
      probePeer();
      probe = setInterval(probePeer, PEER_PROBE_INTERVAL_MS);
      probe.unref();
    });
    socket.on('error', () => undefined);
    socket.on('close', () => {
      if (probe) clearInterval(probe);
      this.connections.delete(socket);
    });
  }

  /** Handles one frame; every outcome is a response, never a crash. */
  async handleFrame(connection: RpcConnection, text: string): Promise<void> {
    const incoming = classifyServerFrame(text);
    if (incoming.type === 'invalid') {
      connection.send(failureFrame(incoming.id, incoming.error));
      return;
    }
    if (incoming.type === 'notification') {
      // The caller is the kernel's; a hello's claim is only noted (the first one: `dial-stdio` sends it before it
      // passes the remote side's bytes on), and logged when it names someone else.
      if (incoming.message.method === SESSION_HELLO_METHOD && !connection.helloSeen) {
        connection.helloSeen = true;
        const claimed = callerFromHello(incoming.message.params);
        connection.caller.claimed = claimed;
        const { user, uid, pid } = connection.caller;
        if (claimed.user !== user || (claimed.uid !== null && claimed.uid !== uid)) {
          this.options.log?.(
            `session.hello from ${user} (uid ${uid}, pid ${pid}) claims ${claimed.user} (uid ${claimed.uid ?? '?'}); recorded as ${user}`,
          );
        }
      }
      return; // Notifications get no response (JSON-RPC 2.0 §4.1).
    }
    const { id, method, params } = incoming.message;
    if (!isMethodName(method) || !this.handlers.has(method)) {
      connection.send(
        failureFrame(id, new FiredeckError('method_not_found', `Method not found: ${method.slice(0, 128)}`)),
      );
      return;
    }
    const def = methods[method];
    const parsed = def.params.safeParse(params ?? {});
    if (!parsed.success) {
      connection.send(
        failureFrame(
          id,
          new FiredeckError('invalid_params', `Invalid params for ${method}: ${summarizeIssues(parsed.error)}`, {
            details: { issues: parsed.error.issues.map(issueDetail) },
          }),
        ),
      );
      return;
    }
    const handler = this.handlers.get(method)!;
    // async: a handler that throws at once rejects, as one that fails later does.
    const run = async (): Promise<unknown> => handler(parsed.data, { connection, caller: connection.caller });
    const key = incoming.message.idempotencyKey;
    if (def.mutating && key !== undefined) {
      let keyed: ReturnType<IdempotentCalls['run']>;
      try {
        keyed = this.idempotent.run({ uid: connection.caller.uid, key, method, params: parsed.data }, run);
      } catch (err) {
        connection.send(failureFrame(id, FiredeckError.from(err)));
        return;
      }
      if (keyed.replayed) {
        // Sent again after a link died before its answer: the first call's outcome, not a second application.
        const outcome = await keyed.outcome;
        this.options.log?.(`${method} from ${connection.caller.user}: sent again with its idempotency key; replayed`);
        connection.send(outcome.ok ? successFrame(id, outcome.result) : failureFrame(id, outcome.error));
        return;
      }
      await this.answer(connection, id, method, parsed.data, () =>
        keyed.outcome.then((o) => (o.ok ? o.result : Promise.reject(o.error))),
      );
      return;
    }
    await this.answer(connection, id, method, parsed.data, run);
  }

  /** Runs a call, answers it, and hands a mutating one to the audit log. */
  private async answer(
    connection: RpcConnection,
    id: RpcId,
    method: MethodName,
    params: unknown,
    run: () => Promise<unknown>,
  ): Promise<void> {
    const def = methods[method];
    let error: FiredeckError | null = null;
    try {
      // Validation once per boundary: the daemon checks params; its results are typed, and clients check them.
      const result = await run();
      connection.send(successFrame(id, result));
    } catch (err) {
      error = FiredeckError.from(err);
      if (error.kind === 'internal') this.options.log?.(`${method} failed: ${describe(err)}`);
      connection.send(failureFrame(id, error));
    } finally {
      if (def.mutating) {
        this.options.onMutatingCall?.({
          method,
          caller: connection.caller,
          params,
          ok: error === null,
          error,
        });
      }
    }
  }
}

/** Answers a request over the connection's cap with `resource_exhausted`; false for any other frame (handled as usual). */
function refuseOverCap(connection: RpcConnection, text: string): boolean {
  const incoming = classifyServerFrame(text);
  if (incoming.type !== 'request') return false;
  connection.send(
    failureFrame(
      incoming.message.id,
      new FiredeckError(
        'resource_exhausted',
        `Too many calls in flight on this connection (at most ${MAX_CALLS_IN_FLIGHT}); ${incoming.message.method.slice(0, 128)} was not run`,
        {
          hint: 'Wait for answers before sending more calls on this connection, or open another connection.',
          details: { maxCallsInFlight: MAX_CALLS_IN_FLIGHT },
        },
      ),
    ),
  );
  return true;
}

function channelOpenRequest(text: string): { id: string | number; params: unknown } | null {
  if (!text.includes(CHANNEL_OPEN_METHOD)) return null;
  const incoming = classifyServerFrame(text);
  if (incoming.type !== 'request' || incoming.message.method !== CHANNEL_OPEN_METHOD) return null;
  return { id: incoming.message.id, params: incoming.message.params };
}

/** The caller of a connection whose peer the kernel named. */
function callerOf(peer: PeerCredentials): Caller {
  return { user: userName(peer.uid) ?? String(peer.uid), uid: peer.uid, gid: peer.gid, pid: peer.pid, claimed: null };
}

/** One zod issue as the error's data carries it; an unknown field is named in `keys` (params are strict). */
function issueDetail(issue: z.ZodError['issues'][number]): { path: string; message: string; keys?: string[] } {
  const detail = { path: issue.path.join('.'), message: issue.message };
  return issue.code === 'unrecognized_keys' ? { ...detail, keys: issue.keys } : detail;
}

function summarizeIssues(error: z.ZodError): string {
  return error.issues
    .slice(0, 5)
    .map((i) => (i.path.length > 0 ? `${i.path.join('.')}: ${i.message}` : i.message))
    .join('; ');
}

function describe(err: unknown): string {
  return err instanceof Error ? (err.stack ?? err.message) : String(err);
}
