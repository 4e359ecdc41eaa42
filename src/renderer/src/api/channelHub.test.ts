import { describe, expect, it } from 'vitest';
import type { AppCallName, AppEvent, AppParams, AppResult } from '../../../shared/app/contract';
import {
  CHANNEL_PORT_MAX_WRITE,
  CHANNEL_PORT_WINDOW_MESSAGE,
  ChannelPortInbound,
} from '../../../shared/app/channelPort';
import type { AppClient, AppLink } from './appClient';
import { ChannelHub, decodeBase64, encodeBase64, portChannel, type RendererChannel } from './channelHub';
import { channelPortInbox, type PortWindow } from './ipcClient';
import { ChannelSocket } from '../features/desktop/channelSocket';

/** Records calls and lets the test push events, standing in for main's side of the contract. */
class RecordingClient implements AppClient {
  readonly transport = 'websocket' as const;
  readonly calls: { name: string; params: unknown }[] = [];
  private listener: ((e: AppEvent) => void) | null = null;
  constructor(private readonly beforeAnswer: () => void = () => undefined) {}
  call<N extends AppCallName>(name: N, params: AppParams<N>): Promise<AppResult<N>> {
    this.calls.push({ name, params });
    if (name === 'channels.open') {
      this.beforeAnswer();
      return Promise.resolve({ channelId: `ch-${'a'.repeat(24)}` } as AppResult<N>);
    }
    return Promise.resolve(null as AppResult<N>);
  }
  onEvent(listener: (e: AppEvent) => void): () => void {
    this.listener = listener;
    return () => undefined;
  }
  push(e: AppEvent): void {
    this.listener?.(e);
  }
  private linkListener: ((link: AppLink) => void) | null = null;
  onLink(listener: (link: AppLink) => void): () => void {
    this.linkListener = listener;
    return () => undefined;
  }
  link(link: AppLink): void {
    this.linkListener?.(link);
  }
}

const ID = `ch-${'a'.repeat(24)}`;
const text = (s: string): string => encodeBase64(new TextEncoder().encode(s));

describe('renderer channel hub', () => {
  it('round-trips binary through base64', () => {
    const bytes = new Uint8Array(70_000).map((_, i) => i % 256);
    const back = decodeBase64(encodeBase64(bytes));
    expect(back.length).toBe(bytes.length);
    expect(back.every((b, i) => b === bytes[i])).toBe(true);
  });

  it('keeps output that overtook the open answer and delivers it first, in order', async () => {
    let client: RecordingClient;
    // eslint-disable-next-line prefer-const
    client = new RecordingClient(() => client.push({ type: 'channel.data', channelId: ID, data: text('early ') }));
    const hub = new ChannelHub(client);
    const ch = await hub.open({ hostId: 'local', kind: 'console', vmId: 'vm-00000000' });
    client.push({ type: 'channel.data', channelId: ID, data: text('late') });
    const seen: string[] = [];
    ch.onData((b) => seen.push(new TextDecoder().decode(b)));
    expect(seen).toEqual(['early ', 'late']);
  });

  it('batches acknowledgements and reports the close with its error', async () => {
    const client = new RecordingClient();
    const hub = new ChannelHub(client);
    const ch = await hub.open({ hostId: 'local', kind: 'shell', vmId: 'vm-00000000' });
    ch.ack(40_000);
    ch.ack(40_000);
    expect(client.calls.filter((c) => c.name === 'channels.ack')).toEqual([
      { name: 'channels.ack', params: { channelId: ID, bytes: 80_000 } },
    ]);
    let closedWith: string | null | undefined;
    ch.onClose((e) => (closedWith = e?.message ?? null));
    client.push({ type: 'channel.closed', channelId: ID, error: { kind: 'unavailable', message: 'guest sshd gone' } });
    expect(closedWith).toBe('guest sshd gone');
    expect(ch.closed).toBe(true);
  });

  it("tells every close listener (the channel link, noVNC's socket) about the end, also one that comes late", async () => {
    const client = new RecordingClient();
    const hub = new ChannelHub(client);
    const ch = await hub.open({ hostId: 'local', kind: 'vnc', vmId: 'vm-00000000' });
    const heard: string[] = [];
    ch.onClose((e) => heard.push(`link ${e?.message}`));
    ch.onClose((e) => heard.push(`socket ${e?.message}`));
    client.push({ type: 'channel.closed', channelId: ID, error: { kind: 'unavailable', message: 'Xvnc gone' } });
    ch.onClose((e) => heard.push(`late ${e?.message}`));
    expect(heard).toEqual(['link Xvnc gone', 'socket Xvnc gone', 'late Xvnc gone']);
  });

  it('sends a large write (a big paste) in pieces that each fit one call, in order', async () => {
    const client = new RecordingClient();
    const hub = new ChannelHub(client);
    const ch = await hub.open({ hostId: 'local', kind: 'shell', vmId: 'vm-00000000' });
    const bytes = new Uint8Array(3 * 1024 * 1024 + 5).map((_, i) => (i * 7) % 256);
    ch.write(bytes);
    const writes = client.calls.filter((c) => c.name === 'channels.write').map((c) => c.params as { data: string });
    expect(writes.length).toBe(Math.ceil(bytes.length / CHANNEL_PORT_MAX_WRITE));
    // Each fits the contract's cap on one write (1 MiB of base64).
    for (const w of writes) expect(w.data.length).toBeLessThanOrEqual(1024 * 1024);
    const back = Buffer.concat(writes.map((w) => Buffer.from(decodeBase64(w.data))));
    expect(back.equals(Buffer.from(bytes))).toBe(true);
  });

  it('ends every open channel with "disconnected" when the link to main is lost', async () => {
    const client = new RecordingClient();
    const hub = new ChannelHub(client);
    const ch = await hub.open({ hostId: 'local', kind: 'shell', vmId: 'vm-00000000' });
    let closedWith: { kind: string } | null | undefined;
    ch.onClose((e) => (closedWith = e));
    client.link('lost');
    expect(ch.closed).toBe(true);
    expect(closedWith?.kind).toBe('disconnected');
    const before = client.calls.length;
    ch.write('after');
    expect(client.calls.length).toBe(before);
  });

  it('gives noVNC a raw channel with every property its Websock checks, holding bytes until it listens', async () => {
    const client = new RecordingClient();
    const hub = new ChannelHub(client);
    const ch = await hub.open({ hostId: 'local', kind: 'vnc', vmId: 'vm-00000000' });
    const sock = new ChannelSocket(ch);
    const props = [...Object.keys(sock), ...Object.getOwnPropertyNames(Object.getPrototypeOf(sock))];
    for (const p of ['send', 'close', 'binaryType', 'onerror', 'onmessage', 'onopen', 'protocol', 'readyState']) {
      expect(props).toContain(p);
    }
    expect(sock.readyState).toBe('open');
    client.push({ type: 'channel.data', channelId: ID, data: text('RFB 003.008\n') });
    const got: string[] = [];
    sock.onmessage = (e) => got.push(new TextDecoder().decode(e.data as ArrayBuffer));
    await Promise.resolve();
    expect(got).toEqual(['RFB 003.008\n']);
    sock.send(new TextEncoder().encode('RFB 003.008\n'));
    expect(client.calls.at(-1)).toEqual({
      name: 'channels.write',
      params: { channelId: ID, data: text('RFB 003.008\n'), encoding: 'base64' },
    });
  });
});

/** Main's end of a channel port, as the renderer test plays it: records messages, can send output and the end. */
class MainEnd {
  readonly received: unknown[] = [];
  private waiters: (() => void)[] = [];
  constructor(readonly port: MessagePort) {
    port.onmessage = (e) => {
      this.received.push(e.data);
      for (const w of this.waiters.splice(0)) w();
    };
  }
  /** Resolves once `count` messages arrived. */
  async receivedCount(count: number): Promise<unknown[]> {
    while (this.received.length < count) await new Promise<void>((resolve) => this.waiters.push(resolve));
    return this.received;
  }
}

function portPair(): { page: MessagePort; main: MainEnd } {
  const { port1, port2 } = new MessageChannel();
  return { page: port2, main: new MainEnd(port1) };
}

const nextData = (ch: RendererChannel, count: number): Promise<Uint8Array[]> =>
  new Promise((resolve) => {
    const got: Uint8Array[] = [];
    ch.onData((b) => {
      got.push(b);
      if (got.length === count) resolve(got);
    });
  });

describe('renderer channel on a MessagePort (Electron)', () => {
  it('delivers binary output intact, held until the consumer subscribes', async () => {
    const { page, main } = portPair();
    const ch = portChannel(ID, page);
    const bytes = new Uint8Array(70_000).map((_, i) => i % 256);
    main.port.postMessage(bytes);
    main.port.postMessage(new Uint8Array([0xff, 0x00]));
    main.port.postMessage({ type: 'closed', error: null });
    // The end comes after the output, so once it is heard the output has arrived with nobody listening.
    await new Promise<void>((resolve) => ch.onClose(() => resolve()));
    const got = await nextData(ch, 2);
    expect(Buffer.from(got[0]!).equals(Buffer.from(bytes))).toBe(true);
    expect(got[1]).toEqual(new Uint8Array([0xff, 0x00]));
  });

  it('sends writes as exact bytes, splitting large ones, and strings as UTF-8', async () => {
    const { page, main } = portPair();
    const ch = portChannel(ID, page);
    const backing = new Uint8Array(16).map((_, i) => 0xf0 + i);
    ch.write(backing.subarray(2, 5));
    ch.write('é\n');
    const big = new Uint8Array(CHANNEL_PORT_MAX_WRITE + 10).map((_, i) => (i * 7) % 256);
    ch.write(big);
    const msgs = (await main.receivedCount(4)) as { type: string; data: Uint8Array }[];
    expect(msgs[0]).toEqual({ type: 'write', data: new Uint8Array([0xf2, 0xf3, 0xf4]) });
    expect(msgs[0]!.data.buffer.byteLength).toBe(3);
    expect(msgs[1]).toEqual({ type: 'write', data: new TextEncoder().encode('é\n') });
    expect(msgs[2]!.data.byteLength).toBe(CHANNEL_PORT_MAX_WRITE);
    expect(msgs[3]!.data.byteLength).toBe(10);
    expect(Buffer.concat([msgs[2]!.data, msgs[3]!.data]).equals(Buffer.from(big))).toBe(true);
    for (const m of msgs) expect(ChannelPortInbound.safeParse(m).success).toBe(true);
  });

  it('batches acknowledgements, passes resizes, and closes through main', async () => {
    const { page, main } = portPair();
    const ch = portChannel(ID, page);
    ch.ack(40_000);
    ch.ack(40_000);
    ch.resize(132, 40);
    ch.close();
    expect(await main.receivedCount(3)).toEqual([
      { type: 'ack', bytes: 80_000 },
      { type: 'resize', cols: 132, rows: 40 },
      { type: 'close' },
    ]);
    expect(ch.closed).toBe(false);
    const closedWith = new Promise<string | null>((resolve) => ch.onClose((e) => resolve(e?.message ?? null)));
    const alsoHeard = new Promise<string | null>((resolve) => ch.onClose((e) => resolve(e?.message ?? null)));
    const portClosed = new Promise<void>((resolve) => main.port.addEventListener('close', () => resolve()));
    main.port.postMessage({ type: 'closed', error: { kind: 'unavailable', message: 'guest sshd gone' } });
    expect(await closedWith).toBe('guest sshd gone');
    expect(await alsoHeard).toBe('guest sshd gone');
    expect(ch.closed).toBe(true);
    await portClosed;
    // Nothing goes out once closed.
    ch.write('late');
    ch.ack(1);
    expect(main.received).toHaveLength(3);
  });

  it('takes only bytes and the end from main; anything else is not for it', async () => {
    const { page, main } = portPair();
    const ch = portChannel(ID, page);
    const got = nextData(ch, 1);
    main.port.postMessage('text');
    main.port.postMessage({ type: 'other', error: null });
    main.port.postMessage(new Uint8Array([7]));
    expect(await got).toEqual([new Uint8Array([7])]);
    expect(ch.closed).toBe(false);
  });

  it('the hub opens a channel on the port main sent for it when the client has ports', async () => {
    const { page, main } = portPair();
    const client = new RecordingClient();
    const hub = new ChannelHub(Object.assign(client, { channelPort: () => Promise.resolve(page) }));
    const ch = await hub.open({ hostId: 'local', kind: 'shell', vmId: 'vm-00000000' });
    ch.write('ls\n');
    expect(await main.receivedCount(1)).toEqual([{ type: 'write', data: new TextEncoder().encode('ls\n') }]);
    expect(client.calls.map((c) => c.name)).toEqual(['channels.open']);
  });

  it('the hub fails the open and closes the channel when its port does not come', async () => {
    const client = new RecordingClient();
    const channelPort = channelPortInbox(pageWindow(), 20);
    const hub = new ChannelHub(Object.assign(client, { channelPort }));
    await expect(hub.open({ hostId: 'local', kind: 'vnc', vmId: 'vm-00000000' })).rejects.toThrow(
      /did not arrive from main/,
    );
    expect(client.calls.at(-1)).toEqual({ name: 'channels.close', params: { channelId: ID } });
  });
});

/** The window as the inbox sees it: an event target that messages are dispatched on. */
const pageWindow = (): EventTarget & PortWindow => new EventTarget() as EventTarget & PortWindow;

describe('channel port inbox', () => {
  const post = (win: EventTarget, data: unknown, ports: MessagePort[], source: unknown = win): void => {
    const event = new Event('message');
    Object.defineProperties(event, { data: { value: data }, ports: { value: ports }, source: { value: source } });
    win.dispatchEvent(event);
  };
  const notice = (channelId: string): unknown => ({ type: CHANNEL_PORT_WINDOW_MESSAGE, channelId });

  it('matches ports to channel ids whichever comes first', async () => {
    const win = pageWindow();
    const claim = channelPortInbox(win);
    const early = new MessageChannel();
    post(win, notice(ID), [early.port1]);
    expect(await claim(ID)).toBe(early.port1);
    const other = `ch-${'c'.repeat(24)}`;
    const waiting = claim(other);
    const late = new MessageChannel();
    post(win, notice(other), [late.port1]);
    expect(await waiting).toBe(late.port1);
  });

  it('takes only what the window posted to itself, with a valid notice', async () => {
    const win = pageWindow();
    const claim = channelPortInbox(win, 50);
    const waiting = claim(ID);
    post(win, notice(ID), [new MessageChannel().port1], new EventTarget());
    post(win, { type: 'something-else', channelId: ID }, [new MessageChannel().port1]);
    post(win, notice(ID), []);
    await expect(waiting).rejects.toThrow(/did not arrive/);
  });

  it('closes a port that arrives after its channel was given up', async () => {
    const win = pageWindow();
    const claim = channelPortInbox(win, 10);
    await expect(claim(ID)).rejects.toThrow(/did not arrive/);
    const { port1, port2 } = new MessageChannel();
    const closed = new Promise<void>((resolve) => port2.addEventListener('close', () => resolve()));
    post(win, notice(ID), [port1]);
    await closed;
  });
});
