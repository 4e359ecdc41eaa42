import type { AppError, ChannelOpenParams } from '../../../shared/app/contract';
import { toAppError } from '../../../shared/errors';
import type { RendererChannel } from './channelHub';

/**
 * Where a console, shell or desktop stands, in the same words for all three:
 * - `opening`: asked main for the stream, no answer yet;
 * - `open`: bytes flow;
 * - `closed`: the stream ended (the shell exited, a stopped VM's log was shown whole, the view closed it);
 * - `failed`: it could not open, or broke (main's or the guest's reason in `error`);
 * - `disconnected`: the page's link to main dropped (web mode), which ends every stream of the page.
 */
export type LinkStatus =
  | { state: 'opening' }
  | { state: 'open' }
  | { state: 'closed' }
  | { state: 'failed'; error: AppError }
  | { state: 'disconnected'; error: AppError };

export type LinkState = LinkStatus['state'];

/** What the link opens channels with: the renderer's channel hub. */
export interface ChannelOpener {
  open(params: ChannelOpenParams): Promise<RendererChannel>;
  /** True while the page's link to main is down. */
  readonly linkLost: boolean;
}

/**
 * Takes a connection's bytes in order. A chunk is acknowledged once the consumer returned, or once what it
 * returned settled: a consumer that is slow to parse (xterm.js, a frame of the log view) holds the stream back
 * in main instead of letting it pile up in the page.
 */
export type DataConsumer = (bytes: Uint8Array) => void | PromiseLike<void>;

export interface ChannelLinkOptions {
  /** What to open; asked at every open (a terminal's size is the one it has then). */
  params(): ChannelOpenParams;
  onData?: DataConsumer;
  /**
   * A connection opened. A consumer that speaks a protocol over it (noVNC) takes it here, with `fail` to end
   * this connection for a reason of its own (the guest refused the login); what it returns runs when this
   * connection ends. Runs before any byte of the connection reaches `onData`.
   */
  onOpen?(connection: RendererChannel, fail: (error: AppError) => void): (() => void) | undefined;
}

interface Connection {
  channel: RendererChannel;
  ended: boolean;
  detach: (() => void) | undefined;
}

const OPENING: LinkStatus = { state: 'opening' };
const OPEN: LinkStatus = { state: 'open' };
const CLOSED: LinkStatus = { state: 'closed' };

/**
 * One stream of one view, through every reconnect: opens it, tracks its status, reopens it on demand, and
 * passes input to whichever connection is current. A view keeps what it shows (a terminal its scrollback)
 * across connections; answers and bytes of a connection that was replaced are dropped.
 */
export class ChannelLink {
  private status: LinkStatus = OPENING;
  private readonly listeners = new Set<() => void>();
  private current: Connection | null = null;
  /** Counts opens: an answer for an earlier one is stale. */
  private attempt = 0;

  constructor(
    private readonly opener: ChannelOpener,
    private readonly options: ChannelLinkOptions,
  ) {}

  readonly getStatus = (): LinkStatus => this.status;

  readonly subscribe = (listener: () => void): (() => void) => {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  };

  /** Opens the stream, or opens it again (the current connection, if any, is closed first). */
  readonly open = (): void => {
    this.endCurrent();
    const attempt = ++this.attempt;
    this.set(OPENING);
    let params: ChannelOpenParams;
    try {
      params = this.options.params();
    } catch (err) {
      this.set(this.broken(toAppError(err)));
      return;
    }
    this.opener.open(params).then(
      (channel) => {
        if (attempt === this.attempt) this.attach(channel);
        else channel.close();
      },
      (err: unknown) => {
        if (attempt === this.attempt) this.set(this.broken(toAppError(err)));
      },
    );
  };

  readonly reconnect = (): void => this.open();

  /** Closes the stream for good (the view goes away); an open still under way is closed when it answers. */
  readonly close = (): void => {
    this.attempt++;
    this.endCurrent();
    this.set(CLOSED);
  };

  readonly write = (data: Uint8Array | string): void => {
    if (this.current && !this.current.ended) this.current.channel.write(data);
  };

  readonly resize = (cols: number, rows: number): void => {
    if (this.current && !this.current.ended) this.current.channel.resize(cols, rows);
  };

  private attach(channel: RendererChannel): void {
    const connection: Connection = { channel, ended: false, detach: undefined };
    this.current = connection;
    this.set(OPEN);
    try {
      const detach = this.options.onOpen?.(channel, (error) => this.fail(connection, error));
      if (connection.ended) detach?.();
      else connection.detach = detach;
      const consume = this.options.onData;
      // Once a connection is over (replaced, closed, failed), what it still had in flight is not shown.
      if (consume && !connection.ended) {
        channel.onData((bytes) => (connection.ended ? undefined : deliver(channel, consume, bytes)));
      }
    } catch (err) {
      this.fail(connection, toAppError(err));
    }
    // Last, so that a channel that ended before it was answered still hands over its bytes first.
    channel.onClose((error) => this.ended(connection, error));
  }

  /** The channel ended by itself: main closed it, with a reason when it broke. */
  private ended(connection: Connection, error: AppError | null): void {
    if (connection.ended) return;
    this.finish(connection);
    if (this.current === connection) {
      this.current = null;
      this.set(error ? this.broken(error) : CLOSED);
    }
  }

  /**
   * The consumer's protocol failed on this connection. When the channel has ended already, its own end (with
   * main's reason) is about to be heard, and says more.
   */
  private fail(connection: Connection, error: AppError): void {
    if (connection.ended || connection.channel.closed) return;
    this.finish(connection);
    connection.channel.close();
    if (this.current === connection) {
      this.current = null;
      this.set({ state: 'failed', error });
    }
  }

  private endCurrent(): void {
    const connection = this.current;
    this.current = null;
    if (!connection || connection.ended) return;
    this.finish(connection);
    connection.channel.close();
  }

  private finish(connection: Connection): void {
    connection.ended = true;
    const detach = connection.detach;
    connection.detach = undefined;
    detach?.();
  }

  /** Main's reason as main sent it (the renderer trusts main); a throw of the page's own in the app's form. */
  private broken(error: AppError): LinkStatus {
    return this.opener.linkLost ? { state: 'disconnected', error } : { state: 'failed', error };
  }

  private set(status: LinkStatus): void {
    if (status === this.status) return;
    this.status = status;
    for (const listener of [...this.listeners]) listener();
  }
}

/** Hands one chunk to the consumer and acknowledges it once the consumer is done with it. */
function deliver(channel: RendererChannel, consume: DataConsumer, bytes: Uint8Array): void {
  const ack = (): void => channel.ack(bytes.byteLength);
  let parsed: void | PromiseLike<void>;
  try {
    parsed = consume(bytes);
  } catch (err) {
    ack();
    throw err;
  }
  if (isThenable(parsed)) parsed.then(ack, ack);
  else ack();
}

function isThenable(value: unknown): value is PromiseLike<void> {
  return typeof (value as PromiseLike<void> | undefined)?.then === 'function';
}
