import { Duplex, PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { vncAuthResponse } from './des';
import { acceptClient, authenticateToGuest } from './rfbProxy';

/** Collects what the code under test writes, and lets the test wait for a byte count. */
class Sink extends PassThrough {
  private got = Buffer.alloc(0);
  constructor() {
    super();
    this.on('data', (c: Buffer) => (this.got = Buffer.concat([this.got, c])));
  }
  async next(count: number): Promise<Buffer> {
    while (this.got.length < count) await new Promise((r) => setImmediate(r));
    const out = this.got.subarray(0, count);
    this.got = this.got.subarray(count);
    return out;
  }
}

/** One end of a socket-like pair: what the code writes lands in `sent`, what the test pushes is read. */
function duplexPair(): { stream: Duplex; sent: Sink; push(b: Buffer | string): void } {
  const sent = new Sink();
  const incoming = new PassThrough();
  const stream = Duplex.from({ readable: incoming, writable: sent });
  return { stream, sent, push: (b) => incoming.write(b) };
}

async function dribble(push: (b: Buffer) => void, bytes: Buffer): Promise<void> {
  for (const b of bytes) {
    push(Buffer.from([b]));
    await new Promise((r) => setImmediate(r));
  }
}

describe('acceptClient (the viewer side)', () => {
  it('handles a viewer whose banner arrives byte by byte and keeps what follows the handshake', async () => {
    const input = new PassThrough();
    const output = new Sink();
    const accepted = acceptClient(input, output, { timeoutMs: 5000 });
    expect((await output.next(12)).toString()).toBe('RFB 003.008\n');
    await dribble((b) => input.write(b), Buffer.from('RFB 003.008\n'));
    expect([...(await output.next(2))]).toEqual([1, 1]);
    input.write(Buffer.from([1, 1, 0xaa]));
    expect((await output.next(4)).readUInt32BE(0)).toBe(0);
    const session = await accepted;
    expect(session.version).toBe('3.8');
    expect([...session.pending]).toEqual([1, 0xaa]);
    // Later bytes stay in the (paused) stream for whoever pipes it next; none is lost.
    input.write(Buffer.from([0xbb]));
    expect([...(input.read() as Buffer)]).toEqual([0xbb]);
  });

  it('answers a 3.7 viewer without a SecurityResult for None', async () => {
    const input = new PassThrough();
    const output = new Sink();
    const accepted = acceptClient(input, output, { timeoutMs: 5000 });
    await output.next(12);
    input.write('RFB 003.007\n');
    await output.next(2);
    input.write(Buffer.from([1, 1]));
    const session = await accepted;
    expect(session.version).toBe('3.7');
    expect([...session.pending]).toEqual([1]);
  });

  it('rejects a peer that is not an RFB viewer, and a silent one at the deadline', async () => {
    const input = new PassThrough();
    const accepted = acceptClient(input, new Sink(), { timeoutMs: 5000 });
    input.write('GET / HTTP/1.1\r\n');
    await expect(accepted).rejects.toMatchObject({ kind: 'invalid_request', message: /not an RFB 3\.x client/ });
    await expect(acceptClient(new PassThrough(), new Sink(), { timeoutMs: 50 })).rejects.toMatchObject({
      kind: 'timeout',
    });
  });
});

describe('authenticateToGuest (the guest side)', () => {
  it('answers the challenge with the password and keeps bytes that follow SecurityResult', async () => {
    const guest = duplexPair();
    const authed = authenticateToGuest(guest.stream, 'pw123456', { timeoutMs: 5000 });
    guest.push('RFB 003.008\n');
    expect((await guest.sent.next(12)).toString()).toBe('RFB 003.008\n');
    guest.push(Buffer.from([2, 16, 2]));
    expect([...(await guest.sent.next(1))]).toEqual([2]);
    const challenge = Buffer.from('0123456789abcdef');
    guest.push(challenge);
    expect((await guest.sent.next(16)).toString('hex')).toBe(
      Buffer.from(vncAuthResponse('pw123456', challenge)).toString('hex'),
    );
    guest.push(Buffer.from([0, 0, 0, 0, 9]));
    expect([...(await authed).pending]).toEqual([9]);
  });

  it('fails with the reason when the guest offers no VncAuth or refuses the connection', async () => {
    const noAuth = duplexPair();
    const a = authenticateToGuest(noAuth.stream, 'x', { timeoutMs: 5000 });
    noAuth.push(Buffer.concat([Buffer.from('RFB 003.008\n'), Buffer.from([1, 1])]));
    await expect(a).rejects.toMatchObject({ kind: 'unavailable', message: /does not offer VncAuth/ });

    const refused = duplexPair();
    const b = authenticateToGuest(refused.stream, 'x', { timeoutMs: 5000 });
    const why = Buffer.from('too many connections');
    const len = Buffer.alloc(4);
    len.writeUInt32BE(why.length);
    refused.push(Buffer.concat([Buffer.from('RFB 003.008\n'), Buffer.from([0]), len, why]));
    await expect(b).rejects.toMatchObject({ kind: 'unavailable', message: /too many connections/ });
  });

  it('refuses servers older than RFB 3.8 and reports a guest that hangs up', async () => {
    const old = duplexPair();
    const a = authenticateToGuest(old.stream, 'x', { timeoutMs: 5000 });
    old.push('RFB 003.003\n');
    await expect(a).rejects.toMatchObject({ kind: 'unavailable', message: /not an RFB 3\.8 server/ });

    const gone = duplexPair();
    const b = authenticateToGuest(gone.stream, 'x', { timeoutMs: 5000 });
    gone.stream.push(null);
    await expect(b).rejects.toMatchObject({ kind: 'disconnected' });
  });
});
