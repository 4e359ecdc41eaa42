import { EventEmitter } from 'node:events';
import { MessageChannel, type MessagePort } from 'node:worker_threads';
import { afterEach, describe, expect, it } from 'vitest';
import { CHANNEL_PORT_MAX_WRITE } from '../../shared/app/channelPort';
import { appCalls } from '../../shared/app/contract';
import { FiredeckError, toAppError } from '../../shared/errors';
import { portChannel } from '../../renderer/src/api/channelHub';
import { ChannelSocket } from '../../renderer/src/features/desktop/channelSocket';
import { CHANNEL_HIGH_WATER, ChannelBroker } from '../channels/channelBroker';
import { LocalTransport } from '../ssh/localTransport';
import type { ExecOptions } from '../ssh/transport';
import { ChannelPorts, dispatchChannelControl, fromMessagePortMain, type ChannelControl } from './channelPorts';

const transport = new LocalTransport();
const OWNER = 'window-1';

/** Stands in for the app's dispatch: validates with the contract's schemas, then does what appService does. */
function brokerControl(broker: ChannelBroker): ChannelControl {
  return dispatchChannelControl(async (name, params) => {
    const parsed = appCalls[name].params.parse(params);
    if (name === 'channels.write') {
      const p = parsed as { channelId: string; data: string; encoding: 'base64' | 'utf8' };
      broker.write(OWNER, p.channelId, Buffer.from(p.data, p.encoding));
    } else if (name === 'channels.ack') {
      const p = parsed as { channelId: string; bytes: number };
      broker.ack(OWNER, p.channelId, p.bytes);
    } else if (name === 'channels.resize') {
      const p = parsed as { channelId: string; cols: number; rows: number };
      broker.resize(OWNER, p.channelId, p.cols, p.rows);
    } else {
      broker.close(OWNER, (parsed as { channelId: string }).channelId);
    }
    return { ok: true, value: null };
  });
}

/** A channel opened on the real broker with main's end of a Node MessageChannel bound; returns the other end. */
interface Rig {
  channelId: string;
  renderer: MessagePort;
  ports: ChannelPorts;
  broker: ChannelBroker;
  rejected: string[];
  /** Resolves when the broker reported the channel closed (the process ended). */
  brokerClosed: Promise<string | null>;
}
const open: MessagePort[] = [];
afterEach(() => {
  for (const p of open.splice(0)) p.close();
});

async function rig(command: string, options: ExecOptions = {}): Promise<Rig> {
  const broker = new ChannelBroker();
  const rejected: string[] = [];
  const ports = new ChannelPorts(brokerControl(broker), (_id, reason) => rejected.push(reason));
  let reportClosed: (error: string | null) => void = () => undefined;
  const brokerClosed = new Promise<string | null>((resolve) => (reportClosed = resolve));
  const channelId = broker.open(OWNER, await transport.exec(command, options), 'test', {
    data: (id, chunk) => ports.data(id, chunk),
    closed: (id, error) => {
      ports.closed(id, error ? toAppError(error) : null);
      reportClosed(error?.message ?? null);
    },
  });
  const { port1, port2 } = new MessageChannel();
  open.push(port2);
  ports.attach(channelId, port1);
  return { channelId, renderer: port2, ports, broker, rejected, brokerClosed };
}

function nextMessage(port: MessagePort, match: (data: unknown) => boolean): Promise<unknown> {
  return new Promise((resolve) => {
    const on = (data: unknown): void => {
      if (!match(data)) return;
      port.off('message', on);
      resolve(data);
    };
    port.on('message', on);
  });
}

const isClosed = (data: unknown): boolean =>
  typeof data === 'object' && data !== null && (data as { type?: unknown }).type === 'closed';

/** Collects output bytes until `count` arrived, acknowledging each chunk as the renderer would. */
function collect(port: MessagePort, count: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let have = 0;
  return new Promise((resolve) => {
    const on = (data: unknown): void => {
      if (!(data instanceof Uint8Array)) return;
      chunks.push(Buffer.from(data));
      have += data.byteLength;
      port.postMessage({ type: 'ack', bytes: data.byteLength });
      if (have >= count) {
        port.off('message', on);
        resolve(Buffer.concat(chunks));
      }
    };
    port.on('message', on);
  });
}

const everyByte = (repeat: number): Uint8Array => new Uint8Array(256 * repeat).map((_, i) => i % 256);

describe('channel ports (real processes through the local transport, Node MessageChannel as the port)', () => {
  it('carries every byte value both ways, binary, as Uint8Array messages', async () => {
    const r = await rig('cat');
    const sent = everyByte(1024);
    const echoed = collect(r.renderer, sent.byteLength);
    r.renderer.postMessage({ type: 'write', data: sent });
    const back = await echoed;
    expect(back.equals(Buffer.from(sent))).toBe(true);
    expect(r.rejected).toEqual([]);
    r.renderer.postMessage({ type: 'close' });
    expect(await nextMessage(r.renderer, isClosed)).toEqual({ type: 'closed', error: null });
    expect(await r.brokerClosed).toBeNull();
  });

  it('sends output exactly sized, not the pooled buffer it was cut from', async () => {
    const ports = new ChannelPorts({ write() {}, ack() {}, resize() {}, close() {} });
    const { port1, port2 } = new MessageChannel();
    open.push(port2);
    ports.attach('ch-0123456789abcdef', port1);
    const pooled = Buffer.from('hello'); // a view into Node's shared 8 KiB pool
    expect(pooled.buffer.byteLength).toBeGreaterThan(5);
    const got = nextMessage(port2, (d) => d instanceof Uint8Array);
    ports.data('ch-0123456789abcdef', pooled);
    const bytes = (await got) as Uint8Array;
    expect(bytes.buffer.byteLength).toBe(5);
    expect(Buffer.from(bytes).toString()).toBe('hello');
    port2.close();
  });

  it('holds a noisy stream at the high-water mark until the renderer acknowledges over the port', async () => {
    const total = 8 * 1024 * 1024;
    const r = await rig(`head -c ${total} /dev/zero`);
    let received = 0;
    let onChunk: () => void = () => undefined;
    r.renderer.on('message', (data: unknown) => {
      if (data instanceof Uint8Array) {
        received += data.byteLength;
        onChunk();
      }
    });
    await new Promise<void>((resolve) => {
      onChunk = () => {
        if (received >= CHANNEL_HIGH_WATER) resolve();
      };
    });
    const plateau = received;
    // Absence has no event to await: give the pipe a window to push more; nothing may arrive while paused.
    await new Promise((r) => setTimeout(r, 200));
    expect(received).toBe(plateau);
    expect(received).toBeLessThan(CHANNEL_HIGH_WATER + 256 * 1024);

    const ended = nextMessage(r.renderer, isClosed);
    let acked = 0;
    const ackAll = (): void => {
      r.renderer.postMessage({ type: 'ack', bytes: received - acked });
      acked = received;
    };
    onChunk = ackAll;
    ackAll();
    expect(await ended).toEqual({ type: 'closed', error: null });
    expect(received).toBe(total);
  });

  it('refuses invalid messages without ending the channel', async () => {
    const r = await rig('cat');
    for (const bad of [
      'text',
      null,
      42,
      { type: 'write', data: 'not bytes' },
      { type: 'write', data: new Uint8Array(CHANNEL_PORT_MAX_WRITE + 1) },
      { type: 'ack', bytes: -5 },
      { type: 'ack', bytes: 1.5 },
      { type: 'resize', cols: 0, rows: 24 },
      { type: 'shutdown' },
    ]) {
      r.renderer.postMessage(bad);
    }
    const echoed = collect(r.renderer, 6);
    r.renderer.postMessage({ type: 'write', data: new TextEncoder().encode('alive\n') });
    expect((await echoed).toString()).toBe('alive\n');
    expect(r.rejected).toHaveLength(9);
    r.renderer.postMessage({ type: 'close' });
    await r.brokerClosed;
  });

  it('passes resizes on to the pty', async () => {
    const probe = `bash -c 'trap "echo size=\\$(stty size)" WINCH; echo size=$(stty size); while :; do sleep 600 & wait $!; done'`;
    const r = await rig(probe, { pty: { cols: 80, rows: 24 } });
    const text = (want: RegExp): Promise<void> => {
      let seen = '';
      return nextMessage(r.renderer, (d) => {
        if (d instanceof Uint8Array) r.renderer.postMessage({ type: 'ack', bytes: d.byteLength });
        seen += d instanceof Uint8Array ? Buffer.from(d).toString() : '';
        return want.test(seen);
      }).then(() => undefined);
    };
    await text(/size=24 80/);
    const resized = text(/size=40 132/);
    r.renderer.postMessage({ type: 'resize', cols: 132, rows: 40 });
    await resized;
    r.renderer.postMessage({ type: 'close' });
    await r.brokerClosed;
  });

  it('ends the channel when the renderer closes its end of the port', async () => {
    const r = await rig('cat');
    r.renderer.close();
    expect(await r.brokerClosed).toBeNull();
  });

  it('tells the renderer why a channel ended on its own, then closes the port', async () => {
    const r = await rig('echo "no such VM: vm-1" >&2; exit 3');
    const portClosed = new Promise<void>((resolve) => r.renderer.once('close', () => resolve()));
    expect(await nextMessage(r.renderer, isClosed)).toEqual({
      type: 'closed',
      error: toAppError(new FiredeckError('unavailable', 'no such VM: vm-1')),
    });
    await portClosed;
  });

  it('delivers output and the end that came before the port was attached', async () => {
    const ports = new ChannelPorts({ write() {}, ack() {}, resize() {}, close() {} });
    const id = 'ch-00112233445566778899';
    ports.data(id, Buffer.from([0, 1, 2]));
    ports.closed(id, null);
    const { port1, port2 } = new MessageChannel();
    open.push(port2);
    const got: unknown[] = [];
    const ended = new Promise<void>((resolve) =>
      port2.on('message', (d: unknown) => {
        got.push(d);
        if (isClosed(d)) resolve();
      }),
    );
    ports.attach(id, port1);
    await ended;
    expect(got).toEqual([new Uint8Array([0, 1, 2]), { type: 'closed', error: null }]);
  });

  it('closes every port when the window goes away', async () => {
    const r = await rig('cat');
    const portClosed = new Promise<void>((resolve) => r.renderer.once('close', () => resolve()));
    r.ports.closeAll();
    await portClosed;
    // As index.ts does for a closed window: the session's channels end through the broker, and their late
    // output and ends find no port to go to.
    r.broker.closeOwnedBy(OWNER);
    r.ports.data(r.channelId, Buffer.from('late'));
    expect(await r.brokerClosed).toBeNull();
    expect(r.rejected).toEqual([]);
  });

  it('works end to end with the renderer side: noVNC socket ↔ port ↔ broker ↔ process', async () => {
    const broker = new ChannelBroker();
    const ports = new ChannelPorts(brokerControl(broker));
    const channelId = broker.open(OWNER, await transport.exec('cat'), 'cat', {
      data: (id, chunk) => ports.data(id, chunk),
      closed: (id, error) => ports.closed(id, error ? toAppError(error) : null),
    });
    // The page's side is the platform's MessagePort, as in the renderer.
    const pair = new globalThis.MessageChannel();
    ports.attach(channelId, pair.port1 as unknown as MessagePort);
    const sent = everyByte(512);
    const socket = new ChannelSocket(portChannel(channelId, pair.port2));
    const received: Uint8Array[] = [];
    let have = 0;
    const echoed = new Promise<void>((resolve) => {
      socket.onmessage = (e) => {
        received.push(new Uint8Array(e.data as ArrayBuffer));
        have += (e.data as ArrayBuffer).byteLength;
        if (have >= sent.byteLength) resolve();
      };
    });
    socket.send(sent);
    await echoed;
    expect(Buffer.concat(received).equals(Buffer.from(sent))).toBe(true);
    const closed = new Promise<{ code: number; wasClean: boolean }>((resolve) => (socket.onclose = resolve));
    socket.close();
    expect(await closed).toMatchObject({ code: 1000, wasClean: true });
  });
});

describe('Electron port adapter', () => {
  it('hands the listener the message data where MessagePortMain passes an event', () => {
    // Electron's binary is not available here: an emitter with MessagePortMain's event shapes stands in.
    const emitter = new EventEmitter();
    const posted: unknown[] = [];
    const calls: string[] = [];
    const mainPort = {
      postMessage: (m: unknown) => posted.push(m),
      start: () => calls.push('start'),
      close: () => calls.push('close'),
      on: (event: string, listener: (e: { data: unknown }) => void) => emitter.on(event, listener),
    };
    const port = fromMessagePortMain(mainPort);
    const got: unknown[] = [];
    let closed = 0;
    port.on('message', (data) => got.push(data));
    port.on('close', () => closed++);
    emitter.emit('message', { data: { type: 'ack', bytes: 3 }, ports: [] });
    emitter.emit('close');
    port.postMessage(new Uint8Array([1]));
    port.start();
    port.close();
    expect(got).toEqual([{ type: 'ack', bytes: 3 }]);
    expect(closed).toBe(1);
    expect(posted).toEqual([new Uint8Array([1])]);
    expect(calls).toEqual(['start', 'close']);
  });
});
