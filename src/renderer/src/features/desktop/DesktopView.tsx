import { useEffect, useRef, useState } from 'react';
import RFB from '@novnc/novnc';
import { FiredeckError } from '../../../../shared/errors';
import { useChannels } from '../../state/actionsContext';
import { useUiStore } from '../../state/uiStore';
import { ChannelSocket } from './channelSocket';

type DesktopState = 'connecting' | 'connected' | 'password' | 'disconnected' | 'failed';

/** The browser VM's screen through noVNC, over a `firedeckd vnc` channel. */
export function DesktopView(props: { hostId: string; vmId: string; live: boolean }): React.JSX.Element {
  const hub = useChannels();
  const screen = useRef<HTMLDivElement>(null);
  const frame = useRef<HTMLDivElement>(null);
  const rfb = useRef<RFB | null>(null);
  const [state, setState] = useState<{ s: DesktopState; error?: string }>({ s: 'connecting' });
  const [scale, setScale] = useState(true);
  const [attempt, setAttempt] = useState(0);
  const [password, setPassword] = useState('');
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

  useEffect(() => {
    let cancelled = false;
    if (!props.live) {
      setState({ s: 'disconnected', error: 'The VM is not running.' });
      return;
    }
    setState({ s: 'connecting' });
    let channelError: string | null = null;
    hub
      .open({ hostId: props.hostId, kind: 'vnc', vmId: props.vmId })
      .then((ch) => {
        if (cancelled || !screen.current) {
          ch.close();
          return;
        }
        const socket = new ChannelSocket(ch, (error) => {
          channelError = error?.message ?? null;
        });
        const r = new RFB(screen.current, socket, { shared: true });
        r.scaleViewport = scale;
        r.background = '#111417';
        r.addEventListener('connect', () => setState({ s: 'connected' }));
        r.addEventListener('credentialsrequired', () => setState({ s: 'password' }));
        r.addEventListener('securityfailure', (e) => {
          const reason = (e as CustomEvent<{ reason?: string }>).detail?.reason;
          setState({ s: 'failed', error: `VNC authentication failed${reason ? `: ${reason}` : ''}` });
        });
        r.addEventListener('disconnect', (e) => {
          const clean = (e as CustomEvent<{ clean: boolean }>).detail?.clean;
          setState((prev) =>
            prev.s === 'failed'
              ? prev
              : clean && channelError === null
                ? { s: 'disconnected' }
                : { s: 'failed', error: channelError ?? 'the VNC link broke' },
          );
        });
        rfb.current = r;
      })
      .catch((err: unknown) => {
        if (!cancelled) setState({ s: 'failed', error: FiredeckError.from(err).message });
      });
    return () => {
      cancelled = true;
      rfb.current?.disconnect();
      rfb.current = null;
    };
    // The scale mode is applied live below and is not a dependency: changing it must not reconnect.
  }, [hub, props.hostId, props.vmId, props.live, attempt]);

  useEffect(() => {
    if (rfb.current) rfb.current.scaleViewport = scale;
  }, [scale]);

  return (
    <div className="desktop-view" ref={frame}>
      <div className="toolbar">
        <span className={`pill link-${state.s}`} data-testid="desktop-state">
          {state.s}
        </span>
        {state.error ? <span className="row-error">{state.error}</span> : null}
        {state.s === 'disconnected' || state.s === 'failed' ? (
          <button type="button" onClick={() => setAttempt((a) => a + 1)}>
            Reconnect
          </button>
        ) : null}
        {state.s === 'password' ? (
          <form
            onSubmit={(e) => {
              e.preventDefault();
              rfb.current?.sendCredentials({ password });
              setPassword('');
              setState({ s: 'connecting' });
            }}
          >
            <input
              type="password"
              value={password}
              onChange={(e) => setPassword(e.target.value)}
              placeholder="VNC password"
              aria-label="VNC password"
            />
            <button type="submit">Send</button>
          </form>
        ) : null}
        <label className="check">
          <input type="checkbox" checked={scale} onChange={(e) => setScale(e.target.checked)} /> scale to fit
        </label>
        <button type="button" onClick={toggleFullscreen} aria-pressed={fullscreen}>
          {fullscreen ? 'Exit fullscreen' : 'Fullscreen'}
        </button>
        <button type="button" onClick={() => rfb.current?.sendCtrlAltDel()} disabled={state.s !== 'connected'}>
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
          disabled={state.s !== 'connected' || clip === ''}
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
