import { useEffect, useRef, useState } from 'react';
import RFB from '@novnc/novnc';
import type { LinkStatus } from '../../api/channelLink';
import { useChannel } from '../../state/useChannel';
import { useUiStore } from '../../state/uiStore';
import { ChannelStatus } from '../channel/ChannelStatus';
import { ChannelSocket } from './channelSocket';

const OPENING: LinkStatus = { state: 'opening' };

/** The browser VM's screen through noVNC, over a `firedeckd vnc` channel. */
export function DesktopView(props: { hostId: string; vmId: string; live: boolean }): React.JSX.Element {
  if (!props.live) return <div className="empty">The VM is not running: start it to see its desktop.</div>;
  return <DesktopSession hostId={props.hostId} vmId={props.vmId} />;
}

function DesktopSession(props: { hostId: string; vmId: string }): React.JSX.Element {
  const screen = useRef<HTMLDivElement>(null);
  const frame = useRef<HTMLDivElement>(null);
  const rfb = useRef<RFB | null>(null);
  /** The VNC handshake on the current connection is done (the channel opens before it is). */
  const [shaken, setShaken] = useState(false);
  const [scale, setScale] = useState(true);
  const scaleNow = useRef(scale);
  const [clip, setClip] = useState('');
  const [fullscreen, setFullscreen] = useState(false);

  useEffect(() => {
    const onChange = (): void => setFullscreen(document.fullscreenElement === frame.current);
    document.addEventListener('fullscreenchange', onChange);
    return () => document.removeEventListener('fullscreenchange', onChange);
  }, []);
  const toggleFullscreen = (): void => {
    const failed = (): void => useUiStore.getState().toast('Fullscreen was refused.', 'error');
    if (document.fullscreenElement) document.exitFullscreen().catch(failed);
    else frame.current?.requestFullscreen().catch(failed);
  };

  const channel = useChannel({
    hostId: props.hostId,
    vmId: props.vmId,
    kind: 'vnc',
    // noVNC speaks RFB on the connection: it takes the bytes (and acknowledges them) through a socket of its own.
    onOpen: (connection, fail) => {
      // A channel that ended before it was answered has nothing for noVNC, which refuses a closed socket.
      if (!screen.current || connection.closed) return undefined;
      setShaken(false);
      const r = new RFB(screen.current, new ChannelSocket(connection), { shared: true });
      r.scaleViewport = scaleNow.current;
      r.background = '#111417';
      r.addEventListener('connect', () => setShaken(true));
      // The daemon answers the guest's VNC password itself and offers noVNC no security: a question for a
      // password means the guest or the daemon is not what this app expects. The app never asks for it.
      r.addEventListener('credentialsrequired', () =>
        fail({
          kind: 'auth_failed',
          message: 'The desktop asked this app for a VNC password',
          hint: 'The host daemon logs in to the guest; is the host running an older firedeckd?',
        }),
      );
      r.addEventListener('securityfailure', (e) => {
        const reason = (e as CustomEvent<{ reason?: string }>).detail?.reason;
        fail({ kind: 'auth_failed', message: `VNC authentication failed${reason ? `: ${reason}` : ''}` });
      });
      // noVNC gave up on its own (a protocol error); when the channel ended, its reason is shown instead.
      r.addEventListener('disconnect', (e) => {
        setShaken(false);
        if (!(e as CustomEvent<{ clean: boolean }>).detail?.clean) {
          fail({ kind: 'disconnected', message: 'The VNC session broke' });
        }
      });
      rfb.current = r;
      return () => {
        if (rfb.current === r) rfb.current = null;
        r.disconnect();
      };
    },
  });
  // Until noVNC has shaken hands there is no desktop to use yet.
  const status = channel.status.state === 'open' && !shaken ? OPENING : channel.status;
  const connected = status.state === 'open';

  // The scale mode applies live: changing it does not reconnect.
  useEffect(() => {
    scaleNow.current = scale;
    if (rfb.current) rfb.current.scaleViewport = scale;
  }, [scale]);

  return (
    <div className="desktop-view" ref={frame}>
      <div className="toolbar">
        <ChannelStatus status={status} onReconnect={channel.reconnect} testId="desktop-state" />
        <label className="check">
          <input type="checkbox" checked={scale} onChange={(e) => setScale(e.target.checked)} /> scale to fit
        </label>
        <button type="button" onClick={toggleFullscreen} aria-pressed={fullscreen}>
          {fullscreen ? 'Exit fullscreen' : 'Fullscreen'}
        </button>
        <button type="button" onClick={() => rfb.current?.sendCtrlAltDel()} disabled={!connected}>
          Ctrl-Alt-Del
        </button>
        <input
          value={clip}
          onChange={(e) => setClip(e.target.value)}
          placeholder="Text to paste"
          aria-label="Clipboard text"
        />
        <button
          type="button"
          disabled={!connected || clip === ''}
          onClick={() => {
            rfb.current?.clipboardPasteFrom(clip);
            setClip('');
          }}
        >
          Paste
        </button>
      </div>
      <div className={scale ? 'desktop-screen scaled' : 'desktop-screen'} ref={screen} data-testid="desktop-screen" />
    </div>
  );
}
