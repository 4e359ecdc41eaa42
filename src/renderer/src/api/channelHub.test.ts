import { describe, expect, it } from 'vitest';
import type { AppCallName, AppEvent, AppParams, AppResult } from '../../../shared/app/contract';
import type { AppClient } from './appClient';
import { ChannelHub, decodeBase64, encodeBase64 } from './channelHub';
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
