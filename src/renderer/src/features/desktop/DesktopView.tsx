import { useEffect, useRef, useState } from 'react';
import RFB from '@novnc/novnc';
import type { LinkStatus } from '../../api/channelLink';
import { useChannel } from '../../state/useChannel';
import { useUiStore } from '../../state/uiStore';
import { ChannelStatus } from '../channel/ChannelStatus';
import { ChannelSocket } from './channelSocket';

/**
 * How the guest's screen meets the panel:
 * - `fill`: the guest's screen takes the panel's size (RFB SetDesktopSize; TigerVNC's Xvnc follows), so
 *   nothing is scaled or scrolled; scaled to fit meanwhile, or if the guest cannot follow;
 * - `scale`: the guest keeps its size, scaled to fit the panel;
 * - `native`: the guest keeps its size, shown 1:1 (scroll where it is bigger than the panel).
 */
export type ScreenFit = 'fill' | 'scale' | 'native';

const FITS: { fit: ScreenFit; label: string }[] = [
  { fit: 'fill', label: 'fill the panel' },
  { fit: 'scale', label: 'scale to fit' },
  { fit: 'native', label: '1:1' },
];

function applyFit(rfb: RFB, fit: ScreenFit): void {
  rfb.scaleViewport = fit !== 'native';
  rfb.resizeSession = fit === 'fill';
}

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
  const [fit, setFit] = useState<ScreenFit>('fill');
  const fitNow = useRef(fit);
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
      applyFit(r, fitNow.current);
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

  // The fit applies live: changing it does not reconnect.
  useEffect(() => {
    fitNow.current = fit;
    if (rfb.current) applyFit(rfb.current, fit);
  }, [fit]);

  return (
    <div className="desktop-view" ref={frame}>
      <div className="toolbar">
        <ChannelStatus status={status} onReconnect={channel.reconnect} testId="desktop-state" />
        <span className="segmented" role="radiogroup" aria-label="Screen size">
          {FITS.map((f) => (
            <label key={f.fit} className="check">
              <input
                type="radio"
                name={`desktop-fit-${props.vmId}`}
                checked={fit === f.fit}
                onChange={() => setFit(f.fit)}
              />{' '}
              {f.label}
            </label>
          ))}
        </span>
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
      <div className={`desktop-screen fit-${fit}`} ref={screen} data-testid="desktop-screen" />
    </div>
  );
}
