import type { AppError } from '../../../../shared/app/contract';
import type { RendererChannel } from '../../api/channelHub';

type Handler<E> = ((event: E) => void) | null;

/**
 * What noVNC's Websock needs from a raw channel (send, close, binaryType, protocol, readyState and the four
 * `on*` handlers, like an RTCDataChannel), backed by a Firedeck VNC channel. It is open from the start, so RFB
 * begins the handshake at once; bytes that arrive before RFB listens are held until it does.
 */
export class ChannelSocket {
  binaryType = 'arraybuffer';
  protocol = '';
  readyState: 'connecting' | 'open' | 'closing' | 'closed' = 'open';
  onopen: Handler<Event> = null;
  onerror: Handler<Event> = null;
  onclose: Handler<CloseEvent | { code: number; reason: string; wasClean: boolean }> = null;
  private messageHandler: Handler<MessageEvent | { data: ArrayBuffer }> = null;
  private held: Uint8Array[] = [];

  /** `onEnd` hears why the channel ended (noVNC itself only reports that it did). */
  constructor(
    private readonly channel: RendererChannel,
    onEnd: (error: AppError | null) => void = () => undefined,
  ) {
    channel.onData((bytes) => {
      if (this.messageHandler) this.dispatch(bytes);
      else this.held.push(bytes);
    });
    channel.onClose((error) => {
      this.readyState = 'closed';
      onEnd(error);
      this.onclose?.({ code: error ? 1011 : 1000, reason: error?.message ?? '', wasClean: error === null });
    });
  }

  get onmessage(): Handler<MessageEvent | { data: ArrayBuffer }> {
    return this.messageHandler;
  }

  set onmessage(handler: Handler<MessageEvent | { data: ArrayBuffer }>) {
    this.messageHandler = handler;
    if (handler && this.held.length > 0) {
      const held = this.held;
      this.held = [];
      queueMicrotask(() => held.forEach((b) => this.dispatch(b)));
    }
  }

  send(data: ArrayBuffer | Uint8Array): void {
    if (this.readyState !== 'open') return;
    const bytes = data instanceof Uint8Array ? data : new Uint8Array(data);
    // noVNC reuses its send buffer: copy before it is handed on asynchronously.
    this.channel.write(bytes.slice());
  }

  close(): void {
    if (this.readyState === 'closed') return;
    this.readyState = 'closing';
    this.channel.close();
  }

  private dispatch(bytes: Uint8Array): void {
    const copy = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
    this.messageHandler?.({ data: copy });
    // RFB has consumed the bytes into its own queue once the handler returns.
    this.channel.ack(bytes.byteLength);
  }
}
