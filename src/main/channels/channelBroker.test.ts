import { describe, expect, it } from 'vitest';
import type { FiredeckError } from '../../shared/errors';
import { LocalTransport } from '../ssh/localTransport';
import { CHANNEL_HIGH_WATER, ChannelBroker, type ChannelSink } from './channelBroker';

describe('channel broker flow control (real processes through the local transport)', () => {
  const transport = new LocalTransport();

  class RecordingSink implements ChannelSink {
    bytes = 0;
    onData: (() => void) | undefined;
    private finish: (error: string | null) => void = () => undefined;
    readonly ended = new Promise<string | null>((resolve) => (this.finish = resolve));
    data(_id: string, chunk: Buffer): void {
      this.bytes += chunk.length;
      this.onData?.();
    }
    closed(_id: string, error: FiredeckError | null): void {
      this.finish(error?.message ?? null);
    }
  }
  const sink = (): RecordingSink => new RecordingSink();

  it('holds a noisy stream at the high-water mark until the renderer acknowledges', async () => {
    const broker = new ChannelBroker();
    const s = sink();
    const total = 8 * 1024 * 1024;
    const id = broker.open('w1', await transport.exec(`head -c ${total} /dev/zero`), 'head', s);
    // Without acks the stream stops close to the mark, far from the total.
    await new Promise<void>((resolve) => {
      s.onData = () => {
        if (s.bytes >= CHANNEL_HIGH_WATER) resolve();
      };
    });
    const plateau = s.bytes;
    // Absence has no event to await: give the pipe a window to push more; nothing may arrive while paused.
    await new Promise((r) => setTimeout(r, 200));
    expect(s.bytes).toBeLessThan(CHANNEL_HIGH_WATER + 256 * 1024);
    expect(s.bytes).toBe(plateau);
    s.onData = () => broker.ack('w1', id, s.bytes);
    broker.ack('w1', id, s.bytes);
    expect(await s.ended).toBeNull();
    expect(s.bytes).toBe(total);
  });

  it('keeps channels private to the session that opened them', async () => {
    const broker = new ChannelBroker();
    const s = sink();
    const id = broker.open('w1', await transport.exec('cat'), 'cat', s);
    expect(() => broker.write('w2', id, Buffer.from('x'))).toThrow(/No open channel/);
    expect(() => broker.ack('w2', id, 1)).toThrow(/No open channel/);
    broker.write('w1', id, Buffer.from('echo\n'));
    await new Promise<void>((resolve) => (s.onData = resolve));
    expect(s.bytes).toBe(5);
    broker.closeOwnedBy('w1');
    await s.ended;
  });

  it('reports a command that fails with its last stderr line', async () => {
    const broker = new ChannelBroker();
    const s = sink();
    broker.open('w1', await transport.exec('echo "no such VM: vm-1" >&2; exit 3'), 'console', s);
    expect(await s.ended).toBe('no such VM: vm-1');
  });

  it('names the command by its label when it fails without a word on stderr', async () => {
    const broker = new ChannelBroker();
    const s = sink();
    broker.open('w1', await transport.exec('exit 4'), 'vnc', s);
    expect(await s.ended).toBe('vnc exited with code 4');
  });
});
