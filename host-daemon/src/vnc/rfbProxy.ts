import type { Duplex, Readable, Writable } from 'node:stream';
import { FiredeckError } from '../../../src/shared/errors';
import { vncAuthResponse } from './des';

/**
 * The RFB (VNC) handshake on both sides of `firedeckd vnc`: the proxy authenticates to the guest's VNC server
 * with the VM's password (VncAuth), then offers its own client only security type None and carries the
 * remaining bytes (ClientInit onwards) untouched. The password therefore never leaves the host.
 * Protocol: RFC 6143.
 */

const SECURITY_NONE = 1;
const SECURITY_VNC_AUTH = 2;
const VERSION_3_8 = 'RFB 003.008\n';
/** Longer reasons than this are a broken or hostile peer, not a message. */
const MAX_REASON = 4096;

export type RfbClientVersion = '3.3' | '3.7' | '3.8';

/** Reads exact byte counts from a stream during a handshake, then hands back whatever came after. */
class HandshakeReader {
  private buffer: Buffer = Buffer.alloc(0);
  private failure: Error | null = null;
  private wake: (() => void) | null = null;

  constructor(
    private readonly stream: Readable,
    private readonly peer: string,
  ) {
    stream.on('data', this.onData);
    stream.once('end', this.onEnd);
    stream.once('close', this.onEnd);
    stream.on('error', this.onError);
  }

  private readonly onData = (chunk: Buffer): void => {
    this.buffer = this.buffer.length === 0 ? chunk : Buffer.concat([this.buffer, chunk]);
    this.wake?.();
  };

  private readonly onEnd = (): void => {
    this.failure ??= new FiredeckError('disconnected', `${this.peer} closed the connection during the handshake`);
    this.wake?.();
  };

  private readonly onError = (err: Error): void => {
    this.failure ??= new FiredeckError('disconnected', `${this.peer}: ${err.message}`);
    this.wake?.();
  };

  async read(count: number, deadline: number): Promise<Buffer> {
    while (this.buffer.length < count) {
      if (this.failure) throw this.failure;
      const left = deadline - Date.now();
      if (left <= 0) throw new FiredeckError('timeout', `${this.peer} did not finish the RFB handshake in time`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(done, left);
        this.wake = done;
        function done(): void {
          clearTimeout(timer);
          resolve();
        }
      });
      this.wake = null;
    }
    const out = this.buffer.subarray(0, count);
    this.buffer = this.buffer.subarray(count);
    return out;
  }

  async readReason(deadline: number): Promise<string> {
    const length = (await this.read(4, deadline)).readUInt32BE(0);
    if (length > MAX_REASON) throw new FiredeckError('unavailable', `${this.peer} sent a ${length}-byte reason`);
    return (await this.read(length, deadline)).toString('utf8');
  }

  /** Stops reading (the stream is left paused, its pending bytes returned) so that it can be piped. */
  release(): Buffer {
    this.stream.pause();
    this.stream.off('data', this.onData);
    this.stream.off('end', this.onEnd);
    this.stream.off('close', this.onEnd);
    this.stream.off('error', this.onError);
    const rest = this.buffer;
    this.buffer = Buffer.alloc(0);
    return rest;
  }
}

export interface GuestSession {
  /** Bytes the guest sent after its SecurityResult (normally none until ClientInit). */
  pending: Buffer;
}

/**
 * Authenticates to the guest's RFB server as a 3.8 client with VncAuth. Throws `auth_failed` when the
 * server refuses the password, `unavailable` when it speaks something else or offers no VncAuth.
 */
export async function authenticateToGuest(
  guest: Duplex,
  password: string,
  options: { timeoutMs?: number; peer?: string } = {},
): Promise<GuestSession> {
  const peer = options.peer ?? "the guest's VNC server";
  const deadline = Date.now() + (options.timeoutMs ?? 30_000);
  const reader = new HandshakeReader(guest, peer);
  try {
    const banner = (await reader.read(12, deadline)).toString('latin1');
    const version = /^RFB (\d{3})\.(\d{3})\n$/.exec(banner);
    if (!version || Number(version[1]) !== 3 || Number(version[2]) < 8) {
      throw new FiredeckError('unavailable', `${peer} is not an RFB 3.8 server (it sent ${JSON.stringify(banner)})`);
    }
    guest.write(VERSION_3_8);
    const count = (await reader.read(1, deadline))[0]!;
    if (count === 0) {
      throw new FiredeckError('unavailable', `${peer} refused the connection: ${await reader.readReason(deadline)}`);
    }
    const types = [...(await reader.read(count, deadline))];
    if (!types.includes(SECURITY_VNC_AUTH)) {
      throw new FiredeckError('unavailable', `${peer} does not offer VncAuth (it offers types ${types.join(', ')})`, {
        hint: 'The browser image runs Xvnc with -SecurityTypes VncAuth; is this VM from another image?',
      });
    }
    guest.write(Buffer.from([SECURITY_VNC_AUTH]));
    const challenge = await reader.read(16, deadline);
    guest.write(vncAuthResponse(password, challenge));
    const result = (await reader.read(4, deadline)).readUInt32BE(0);
    if (result !== 0) {
      const reason = await reader.readReason(deadline).catch(() => '');
      throw new FiredeckError('auth_failed', `${peer} refused the VM's VNC password${reason ? `: ${reason}` : ''}`, {
        hint: "The guest's Xvnc must use the password from the VM's config drive; recreate the VM if they differ.",
      });
    }
    return { pending: reader.release() };
  } catch (err) {
    reader.release();
    throw err;
  }
}

export interface ClientSession {
  version: RfbClientVersion;
  /** What the client sent after the security handshake (its ClientInit, maybe more). */
  pending: Buffer;
}

/** Acts as an RFB server up to (not including) ClientInit, offering only security type None. */
export async function acceptClient(
  input: Readable,
  output: Writable,
  options: { timeoutMs?: number; peer?: string } = {},
): Promise<ClientSession> {
  const peer = options.peer ?? 'the VNC client';
  const deadline = Date.now() + (options.timeoutMs ?? 60_000);
  const reader = new HandshakeReader(input, peer);
  try {
    output.write(VERSION_3_8);
    const version = clientVersion((await reader.read(12, deadline)).toString('latin1'), peer);
    if (version === '3.3') {
      output.write(u32(SECURITY_NONE));
    } else {
      output.write(Buffer.from([1, SECURITY_NONE]));
      const chosen = (await reader.read(1, deadline))[0]!;
      if (chosen !== SECURITY_NONE) {
        if (version === '3.8') output.write(Buffer.concat([u32(1), reason('only security type None is offered')]));
        throw new FiredeckError('invalid_request', `${peer} chose security type ${chosen}; only None is offered`);
      }
      // 3.7 sends no SecurityResult for None; 3.8 does.
      if (version === '3.8') output.write(u32(0));
    }
    return { version, pending: reader.release() };
  } catch (err) {
    reader.release();
    throw err;
  }
}

/**
 * Tells a client why there is no desktop, in RFB terms (a server with no security types and a reason), so
 * that a VNC viewer shows the reason instead of a bare disconnect. Best effort: a silent client times out.
 */
export async function refuseClient(
  input: Readable,
  output: Writable,
  why: string,
  options: { timeoutMs?: number } = {},
): Promise<void> {
  const deadline = Date.now() + (options.timeoutMs ?? 10_000);
  const reader = new HandshakeReader(input, 'the VNC client');
  try {
    output.write(VERSION_3_8);
    const version = clientVersion((await reader.read(12, deadline)).toString('latin1'), 'the VNC client');
    output.write(Buffer.concat([version === '3.3' ? u32(0) : Buffer.from([0]), reason(why)]));
  } catch {
    // The reason goes to stderr as well; a client that cannot take it in-band still learns it there.
  } finally {
    reader.release();
  }
}

function clientVersion(banner: string, peer: string): RfbClientVersion {
  const m = /^RFB (\d{3})\.(\d{3})\n$/.exec(banner);
  if (!m || Number(m[1]) !== 3) {
    throw new FiredeckError('invalid_request', `${peer} is not an RFB 3.x client (it sent ${JSON.stringify(banner)})`);
  }
  const minor = Number(m[2]);
  // RFC 6143 §7.1.1: unknown minors below 7 are treated as 3.3, and above 8 as 3.8.
  return minor >= 8 ? '3.8' : minor === 7 ? '3.7' : '3.3';
}

function u32(value: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(value, 0);
  return b;
}

function reason(text: string): Buffer {
  const body = Buffer.from(text, 'utf8');
  return Buffer.concat([u32(body.length), body]);
}

export interface RfbProxyOptions {
  /** The client side: the VNC viewer's bytes in, ours out (stdin/stdout for `firedeckd vnc`). */
  client: { input: Readable; output: Writable };
  /** A connected stream to the guest's RFB server. */
  guest: Duplex;
  password: string;
  guestTimeoutMs?: number;
  clientTimeoutMs?: number;
}

/**
 * Authenticates to the guest, then serves the client with security None and carries bytes both ways with
 * backpressure until one side ends. Resolves when the session is over; rejects on handshake failures (after
 * telling the client the reason when the guest refused the password). The guest stream is destroyed at the end.
 */
export async function runRfbProxy(options: RfbProxyOptions): Promise<void> {
  const { client, guest } = options;
  let guestSession: GuestSession;
  try {
    guestSession = await authenticateToGuest(guest, options.password, { timeoutMs: options.guestTimeoutMs ?? 30_000 });
  } catch (err) {
    guest.destroy();
    if (err instanceof FiredeckError && err.kind === 'auth_failed') {
      await refuseClient(client.input, client.output, err.message);
    }
    throw err;
  }
  let clientSession: ClientSession;
  try {
    clientSession = await acceptClient(client.input, client.output, { timeoutMs: options.clientTimeoutMs ?? 60_000 });
  } catch (err) {
    guest.destroy();
    throw err;
  }
  if (guestSession.pending.length > 0) client.output.write(guestSession.pending);
  if (clientSession.pending.length > 0) guest.write(clientSession.pending);
  await pipeBothWays(client, guest);
}

function pipeBothWays(client: { input: Readable; output: Writable }, guest: Duplex): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    let settled = false;
    const finish = (err: Error | null): void => {
      if (settled) return;
      settled = true;
      client.input.unpipe(guest);
      guest.unpipe(client.output);
      guest.destroy();
      if (err) reject(err);
      else resolve();
    };
    guest.pipe(client.output, { end: false });
    client.input.pipe(guest, { end: false });
    // Either side ending ends the session: a viewer that hangs up leaves nothing behind on the guest.
    guest.once('end', () => finish(null));
    guest.once('close', () => finish(null));
    guest.once('error', (err: Error) =>
      finish(new FiredeckError('disconnected', `The VNC connection to the guest broke: ${err.message}`)),
    );
    client.input.once('end', () => finish(null));
    client.input.once('close', () => finish(null));
    client.input.once('error', () => finish(null));
    client.output.once('error', () => finish(null));
  });
}
