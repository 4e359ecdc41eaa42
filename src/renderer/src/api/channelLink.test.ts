import { describe, expect, it } from 'vitest';
import type {
  AppCallName,
  AppError,
  AppEvent,
  AppParams,
  AppResult,
  ChannelOpenParams,
} from '../../../shared/app/contract';
import { FiredeckError } from '../../../shared/errors';
import type { AppClient, AppLink } from './appClient';
import { ChannelHub, type RendererChannel } from './channelHub';
import { ChannelLink, type ChannelLinkOptions, type ChannelOpener, type LinkStatus } from './channelLink';

/** A channel as the hub hands it out: bytes held until a consumer listens; close asks main, which answers with end(). */
class FakeChannel implements RendererChannel {
  readonly acks: number[] = [];
  readonly writes: (Uint8Array | string)[] = [];
  readonly resizes: [number, number][] = [];
  closeRequests = 0;
  private listener: ((bytes: Uint8Array) => void) | null = null;
  private backlog: Uint8Array[] = [];
  private readonly closeListeners: ((error: AppError | null) => void)[] = [];
  private endedWith: { error: AppError | null } | null = null;
  constructor(readonly id: string) {}
  get closed(): boolean {
    return this.endedWith !== null;
  }
  onData(listener: (bytes: Uint8Array) => void): void {
    this.listener = listener;
    for (const b of this.backlog.splice(0)) listener(b);
  }
  onClose(listener: (error: AppError | null) => void): void {
    this.closeListeners.push(listener);
    if (this.endedWith) listener(this.endedWith.error);
  }
  ack(bytes: number): void {
    this.acks.push(bytes);
  }
  write(data: Uint8Array | string): void {
    this.writes.push(data);
  }
  resize(cols: number, rows: number): void {
    this.resizes.push([cols, rows]);
  }
  close(): void {
    this.closeRequests++;
  }
  /** Output from main. */
  push(text: string): void {
    const bytes = new TextEncoder().encode(text);
    if (this.listener) this.listener(bytes);
    else this.backlog.push(bytes);
  }
  /** Main ends the channel. */
  end(error: AppError | null = null): void {
    if (this.endedWith) return;
    this.endedWith = { error };
    for (const l of this.closeListeners) l(error);
  }
}

/** The hub as the link sees it: each open waits until the test answers it. */
class FakeOpener implements ChannelOpener {
  linkLost = false;
  readonly opened: ChannelOpenParams[] = [];
  private readonly answers: { resolve(ch: FakeChannel): void; reject(err: unknown): void }[] = [];
  private count = 0;
  open(params: ChannelOpenParams): Promise<RendererChannel> {
    this.opened.push(params);
    return new Promise((resolve, reject) => this.answers.push({ resolve, reject }));
  }
  /** Answers the oldest open still waiting with a new channel (or the one given). */
  async answer(ch = new FakeChannel(`ch-${String(++this.count).padStart(16, '0')}`)): Promise<FakeChannel> {
    this.answers.shift()!.resolve(ch);
    await settle();
    return ch;
  }
  async refuse(err: unknown): Promise<void> {
    this.answers.shift()!.reject(err);
    await settle();
  }
}

const settle = (): Promise<void> => new Promise((resolve) => setTimeout(resolve, 0));
const text = (bytes: Uint8Array): string => new TextDecoder().decode(bytes);
const SHELL: ChannelOpenParams = { hostId: 'local', kind: 'shell', vmId: 'vm-00000000' };

function linkWith(options: Partial<ChannelLinkOptions> = {}): {
  link: ChannelLink;
  opener: FakeOpener;
  seen: LinkStatus[];
} {
  const opener = new FakeOpener();
  const link = new ChannelLink(opener, { params: () => SHELL, ...options });
  const seen: LinkStatus[] = [];
  link.subscribe(() => seen.push(link.getStatus()));
  return { link, opener, seen };
}

describe('channel link', () => {
  it('opens with the parameters of the moment, then carries input to the open channel', async () => {
    let cols = 80;
    const { link, opener, seen } = linkWith({ params: () => ({ ...SHELL, cols, rows: 24 }) });
    link.write('lost: nothing is open yet');
    cols = 132;
    link.open();
    expect(link.getStatus()).toEqual({ state: 'opening' });
    expect(opener.opened).toEqual([{ ...SHELL, cols: 132, rows: 24 }]);
    const ch = await opener.answer();
    expect(link.getStatus()).toEqual({ state: 'open' });
    link.write('ls\n');
    link.resize(100, 30);
    expect(ch.writes).toEqual(['ls\n']);
    expect(ch.resizes).toEqual([[100, 30]]);
    expect(seen.map((s) => s.state)).toEqual(['open']);
  });

  it('acknowledges each chunk only once the consumer has parsed it', async () => {
    const parsed: (() => void)[] = [];
    const got: string[] = [];
    const { link, opener } = linkWith({
      onData: (bytes) =>
        new Promise<void>((resolve) => {
          got.push(text(bytes));
          parsed.push(resolve);
        }),
    });
    link.open();
    const ch = await opener.answer();
    ch.push('abc');
    ch.push('de');
    expect(got).toEqual(['abc', 'de']);
    expect(ch.acks).toEqual([]);
    parsed[1]!();
    await settle();
    expect(ch.acks).toEqual([2]);
    parsed[0]!();
    await settle();
    expect(ch.acks).toEqual([2, 3]);
  });

  it('acknowledges at once after a consumer that parses synchronously, and also when it throws', async () => {
    const { link, opener } = linkWith({
      onData: (bytes) => {
        if (text(bytes) === 'bad') throw new Error('cannot parse');
      },
    });
    link.open();
    const ch = await opener.answer();
    ch.push('good');
    expect(() => ch.push('bad')).toThrow('cannot parse');
    expect(ch.acks).toEqual([4, 3]);
  });

  it('hands over bytes that came before the answer, in order, then reports the end', async () => {
    const got: string[] = [];
    const { link, opener } = linkWith({ onData: (bytes) => void got.push(text(bytes)) });
    link.open();
    // A stopped VM's console: its whole log and the end arrive before (or with) the answer to the open.
    const ch = new FakeChannel('ch-early');
    ch.push('line 1\n');
    ch.push('line 2\n');
    ch.end(null);
    await opener.answer(ch);
    expect(got).toEqual(['line 1\n', 'line 2\n']);
    expect(link.getStatus()).toEqual({ state: 'closed' });
  });

  it('says closed for a clean end, failed with the reason for a broken one', async () => {
    const { link, opener } = linkWith();
    link.open();
    (await opener.answer()).end(null);
    expect(link.getStatus()).toEqual({ state: 'closed' });
    link.reconnect();
    (await opener.answer()).end({ kind: 'unavailable', message: 'guest sshd gone', hint: 'Start the VM.' });
    expect(link.getStatus()).toEqual({
      state: 'failed',
      error: { kind: 'unavailable', message: 'guest sshd gone', hint: 'Start the VM.' },
    });
  });

  it('says failed with the typed error when the open is refused', async () => {
    const { link, opener } = linkWith();
    link.open();
    await opener.refuse(new FiredeckError('invalid_state', 'VM desk-a is stopped', { hint: 'Start it first.' }));
    expect(link.getStatus()).toEqual({
      state: 'failed',
      error: { kind: 'invalid_state', message: 'VM desk-a is stopped', hint: 'Start it first.' },
    });
  });

  it('says disconnected when the page lost its link to main, for an open channel and for an open in flight', async () => {
    const { link, opener } = linkWith();
    link.open();
    const ch = await opener.answer();
    opener.linkLost = true;
    ch.end({ kind: 'disconnected', message: 'Lost the connection to Firedeck web mode' });
    expect(link.getStatus()).toMatchObject({ state: 'disconnected', error: { kind: 'disconnected' } });
    link.reconnect();
    await opener.refuse(new FiredeckError('disconnected', 'Lost the connection to Firedeck web mode'));
    expect(link.getStatus().state).toBe('disconnected');
    opener.linkLost = false;
    link.reconnect();
    await opener.answer();
    expect(link.getStatus()).toEqual({ state: 'open' });
  });

  it('reconnects on a fresh channel: the old one is closed and nothing it still says counts', async () => {
    const got: string[] = [];
    const { link, opener } = linkWith({ onData: (bytes) => void got.push(text(bytes)) });
    link.open();
    const first = await opener.answer();
    link.reconnect();
    expect(first.closeRequests).toBe(1);
    expect(link.getStatus()).toEqual({ state: 'opening' });
    const second = await opener.answer();
    // main's late answer to the first close, and bytes it had in flight
    first.push('stale');
    first.end({ kind: 'unavailable', message: 'closed by request' });
    expect(link.getStatus()).toEqual({ state: 'open' });
    second.push('fresh');
    link.write('x');
    expect(got).toEqual(['fresh']);
    expect(second.writes).toEqual(['x']);
    expect(first.writes).toEqual([]);
  });

  it('closes a channel whose open was overtaken by a reconnect or by close()', async () => {
    const { link, opener } = linkWith();
    link.open();
    link.reconnect();
    const overtaken = await opener.answer();
    expect(overtaken.closeRequests).toBe(1);
    expect(link.getStatus()).toEqual({ state: 'opening' });
    const current = await opener.answer();
    expect(current.closeRequests).toBe(0);
    expect(link.getStatus()).toEqual({ state: 'open' });

    link.reconnect();
    link.close();
    expect(current.closeRequests).toBe(1);
    const late = await opener.answer();
    expect(late.closeRequests).toBe(1);
    expect(link.getStatus()).toEqual({ state: 'closed' });
  });

  it('gives a protocol on top the connection before its bytes, and detaches it when the connection ends', async () => {
    const events: string[] = [];
    const { link, opener } = linkWith({
      onOpen: (connection) => {
        events.push(`open ${connection.id}`);
        return () => events.push(`detach ${connection.id}`);
      },
      onData: (bytes) => void events.push(`data ${text(bytes)}`),
    });
    link.open();
    const first = await opener.answer();
    first.push('RFB');
    link.reconnect();
    const second = await opener.answer();
    second.end(null);
    link.reconnect();
    const third = await opener.answer();
    link.close();
    expect(events).toEqual([
      `open ${first.id}`,
      'data RFB',
      `detach ${first.id}`,
      `open ${second.id}`,
      `detach ${second.id}`,
      `open ${third.id}`,
      `detach ${third.id}`,
    ]);
  });

  it('fails the connection for the protocol on top with its reason, but not an old or already ended one', async () => {
    const fails: ((error: AppError) => void)[] = [];
    const { link, opener } = linkWith({
      onOpen: (connection, fail) => {
        fails.push(fail);
        // Like noVNC's socket: it hears the channel's end before the link does, and complains about it.
        connection.onClose(() => fail({ kind: 'disconnected', message: 'The VNC session broke' }));
        return undefined;
      },
    });
    link.open();
    const first = await opener.answer();
    link.reconnect();
    const second = await opener.answer();
    fails[0]!({ kind: 'auth_failed', message: 'old news' });
    expect(link.getStatus()).toEqual({ state: 'open' });

    // The channel ended with main's reason, which says more than the protocol's complaint.
    second.end({ kind: 'unavailable', message: "the guest's Xvnc is gone" });
    expect(link.getStatus()).toEqual({
      state: 'failed',
      error: { kind: 'unavailable', message: "the guest's Xvnc is gone" },
    });

    link.reconnect();
    const third = await opener.answer();
    fails[2]!({ kind: 'auth_failed', message: 'VNC authentication failed' });
    expect(third.closeRequests).toBe(1);
    expect(link.getStatus()).toEqual({
      state: 'failed',
      error: { kind: 'auth_failed', message: 'VNC authentication failed' },
    });
    third.end(null);
    expect(link.getStatus()).toEqual({
      state: 'failed',
      error: { kind: 'auth_failed', message: 'VNC authentication failed' },
    });
    expect(first.closeRequests).toBe(1);
  });

  it('fails the connection when the protocol on top cannot start', async () => {
    const { link, opener } = linkWith({
      onOpen: () => {
        throw new FiredeckError('internal', 'noVNC refused the socket');
      },
    });
    link.open();
    const ch = await opener.answer();
    expect(ch.closeRequests).toBe(1);
    expect(link.getStatus()).toMatchObject({ state: 'failed', error: { message: 'noVNC refused the socket' } });
  });
});

/** Main's side for the real hub: answers opens, lets the test drop the page's link. */
class LinkClient implements AppClient {
  readonly transport = 'websocket' as const;
  private linkListener: ((link: AppLink) => void) | null = null;
  private opens = 0;
  call<N extends AppCallName>(name: N, _params: AppParams<N>): Promise<AppResult<N>> {
    if (name === 'channels.open') {
      return Promise.resolve({ channelId: `ch-${String(++this.opens).padStart(24, '0')}` } as AppResult<N>);
    }
    return Promise.resolve(null as AppResult<N>);
  }
  onEvent(_listener: (e: AppEvent) => void): () => void {
    return () => undefined;
  }
  onLink(listener: (link: AppLink) => void): () => void {
    this.linkListener = listener;
    return () => undefined;
  }
  link(link: AppLink): void {
    this.linkListener?.(link);
  }
}

describe('channel link on the renderer channel hub', () => {
  it('is disconnected when web mode drops the page socket, and opens again once it is back', async () => {
    const client = new LinkClient();
    const link = new ChannelLink(new ChannelHub(client), { params: () => SHELL });
    link.open();
    await settle();
    expect(link.getStatus()).toEqual({ state: 'open' });
    client.link('lost');
    expect(link.getStatus()).toMatchObject({ state: 'disconnected', error: { kind: 'disconnected' } });
    client.link('restored');
    link.reconnect();
    await settle();
    expect(link.getStatus()).toEqual({ state: 'open' });
  });
});
