import { describe, expect, it } from 'vitest';
import { CHANNEL_PORT_WINDOW_MESSAGE, type ChannelPortWindowMessage } from '../shared/app/channelPort';
import { relayChannelPort } from './channelPortRelay';

const ID = `ch-${'b'.repeat(24)}`;

describe('preload channel port relay', () => {
  it('hands the one port on to the page with its channel id', async () => {
    const { port1, port2 } = new MessageChannel();
    const posted: { message: ChannelPortWindowMessage; transfer: MessagePort[] }[] = [];
    expect(
      relayChannelPort({ channelId: ID }, [port1], (message, transfer) => posted.push({ message, transfer })),
    ).toBe(true);
    expect(posted).toHaveLength(1);
    expect(posted[0]!.message).toEqual({ type: CHANNEL_PORT_WINDOW_MESSAGE, channelId: ID });
    // The port handed on is the one main sent: messages on it reach the other end.
    const got = new Promise<unknown>((resolve) => (port2.onmessage = (e) => resolve(e.data)));
    posted[0]!.transfer[0]!.postMessage(new Uint8Array([0, 255]));
    expect(await got).toEqual(new Uint8Array([0, 255]));
    port1.close();
  });

  it('closes and drops ports that come without a valid notice, or not alone', async () => {
    const cases: [unknown, number][] = [
      [{ channelId: 'not-a-channel' }, 1],
      [{ channelId: ID, extra: true }, 1],
      [null, 1],
      [{ channelId: ID }, 2],
      [{ channelId: ID }, 0],
    ];
    for (const [payload, count] of cases) {
      const pairs = Array.from({ length: count }, () => new MessageChannel());
      const closed = pairs.map(
        (p) => new Promise<void>((resolve) => p.port2.addEventListener('close', () => resolve())),
      );
      const posted: unknown[] = [];
      expect(
        relayChannelPort(
          payload,
          pairs.map((p) => p.port1),
          (m) => posted.push(m),
        ),
      ).toBe(false);
      expect(posted).toEqual([]);
      // The other ends see the close: main's end of a refused port hears it and ends the channel.
      await Promise.all(closed);
    }
  });
});
