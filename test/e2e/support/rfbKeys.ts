import type { Page } from 'playwright-core';

/**
 * Diagnostics for the desktop specs: which RFB key presses the page actually sent to the guest. Web mode only
 * (its channel writes cross the page's WebSocket as `channels.write` frames, which a wrapper of
 * `WebSocket.prototype.send` can read); under Electron the bytes go out on a MessagePort and are not recorded.
 */
export async function startKeyRecording(page: Page): Promise<void> {
  await page.evaluate(() => {
    const w = window as unknown as { __fdKeys?: string[]; __fdSend?: WebSocket['send'] };
    w.__fdKeys = [];
    if (w.__fdSend) return;
    const original = WebSocket.prototype.send;
    w.__fdSend = original;
    WebSocket.prototype.send = function (this: WebSocket, data: Parameters<WebSocket['send']>[0]) {
      try {
        if (typeof data === 'string') {
          const frame = JSON.parse(data) as { name?: string; params?: { data?: string; encoding?: string } };
          if (frame.name === 'channels.write' && frame.params?.encoding === 'base64' && frame.params.data) {
            const bin = atob(frame.params.data);
            const at = (i: number): number => bin.charCodeAt(i);
            const u32 = (i: number): number => ((at(i) << 24) | (at(i + 1) << 16) | (at(i + 2) << 8) | at(i + 3)) >>> 0;
            // Client messages (RFC 6143 §7.5, QEMU extended key): only key presses are recorded; a buffer
            // holds whole messages, and parsing stops at a type it does not know.
            for (let i = 0; i < bin.length; ) {
              const type = at(i);
              if (type === 4) {
                if (at(i + 1) === 1) w.__fdKeys!.push(u32(i + 4).toString(16));
                i += 8;
              } else if (type === 255 && at(i + 1) === 0) {
                if (((at(i + 2) << 8) | at(i + 3)) === 1) w.__fdKeys!.push(u32(i + 4).toString(16));
                i += 12;
              } else if (type === 5) i += 6;
              else if (type === 3) i += 10;
              else break;
            }
          }
        }
      } catch {
        // a frame this does not understand is sent as it is
      }
      original.call(this, data);
    };
  });
}

/** The keysyms pressed since startKeyRecording, as text (printable ones as characters, others as 0x… names). */
export async function recordedKeys(page: Page): Promise<string> {
  const keys = await page.evaluate(() => (window as unknown as { __fdKeys?: string[] }).__fdKeys ?? null);
  if (keys === null) return '(not recorded)';
  return keys
    .map((hex) => {
      const sym = parseInt(hex, 16);
      return sym >= 0x20 && sym < 0x7f ? String.fromCharCode(sym) : `<0x${hex}>`;
    })
    .join('');
}
