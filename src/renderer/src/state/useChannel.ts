import { useEffect, useLayoutEffect, useMemo, useRef, useSyncExternalStore } from 'react';
import type { AppError, ChannelKind } from '../../../shared/app/contract';
import type { RendererChannel } from '../api/channelHub';
import { ChannelLink, type DataConsumer, type LinkStatus } from '../api/channelLink';
import { useChannels } from './actionsContext';

export interface UseChannelOptions {
  hostId: string;
  vmId: string;
  kind: ChannelKind;
  /** Console: keep streaming new output (a running VM), or show the log so far and end (a stopped one). */
  follow?: boolean;
  /** Shell: the terminal's size, asked at every open. */
  size?: () => { cols: number; rows: number } | null;
  /** The bytes of every connection, acknowledged once this is done with them (see DataConsumer). */
  onData?: DataConsumer;
  /** A connection opened (see ChannelLinkOptions.onOpen): for a protocol that runs on top of it. */
  onOpen?: (connection: RendererChannel, fail: (error: AppError) => void) => (() => void) | undefined;
}

/** A view's stream and its status: what the status bar shows, and the view's input to it. */
export interface ChannelHandle {
  status: LinkStatus;
  reconnect(): void;
  write(data: Uint8Array | string): void;
  resize(cols: number, rows: number): void;
}

/**
 * One console, shell or VNC stream for a view: opened when the view mounts (and again when what it shows
 * changes), closed when it unmounts, reopened by `reconnect()`. The callbacks may change from render to render;
 * the latest ones are used. `onData` must be given from the first render on, if at all.
 */
export function useChannel(options: UseChannelOptions): ChannelHandle {
  const hub = useChannels();
  const latest = useRef(options);
  useLayoutEffect(() => {
    latest.current = options;
  });
  const { hostId, vmId, kind, follow } = options;
  const consumes = options.onData !== undefined;
  const link = useMemo(
    () =>
      new ChannelLink(hub, {
        params: () => ({
          hostId,
          vmId,
          kind,
          ...(follow !== undefined ? { follow } : {}),
          ...(latest.current.size?.() ?? {}),
        }),
        ...(consumes ? { onData: (bytes: Uint8Array) => latest.current.onData?.(bytes) } : {}),
        onOpen: (connection, fail) => latest.current.onOpen?.(connection, fail),
      }),
    [hub, hostId, vmId, kind, follow, consumes],
  );
  useEffect(() => {
    link.open();
    return () => link.close();
  }, [link]);
  const status = useSyncExternalStore(link.subscribe, link.getStatus);
  return useMemo(() => ({ status, reconnect: link.reconnect, write: link.write, resize: link.resize }), [status, link]);
}
