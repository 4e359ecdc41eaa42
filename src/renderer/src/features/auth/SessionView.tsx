import { lazy, Suspense, useEffect } from 'react';
import { isAuthSessionLive, type AuthSession } from '../../../../shared/protocol/auth';
import { useActions } from '../../state/actionsContext';
import { sessionKey, useAuthStore } from '../../state/authStore';
import { useFleetStore, vmKey } from '../../state/fleetStore';
import { useUiStore } from '../../state/uiStore';
import { useNow } from '../fleet/useNow';
import { HAPPY_PATH, STATE_TEXT, canCancel, canRetry, formatMs, providerLabel, stateSpans, totalMs } from './authModel';

// noVNC is large: it loads when a session's desktop first shows.
const DesktopView = lazy(() => import('../desktop/DesktopView').then((m) => ({ default: m.DesktopView })));

/** One login session: where it is, the browser VM's desktop while the user logs in, and where the credential went. */
export function SessionView(props: { hostId: string; sessionId: string }): React.JSX.Element {
  const { auth } = useActions();
  const row = useAuthStore((s) => s.sessions[sessionKey(props.hostId, props.sessionId)]);
  const show = useUiStore((s) => s.show);
  useEffect(() => {
    if (!row) void auth.load(props.hostId, props.sessionId);
    // Only on opening: events keep a known session current.
  }, [props.hostId, props.sessionId]);
  const back = (
    <button type="button" className="link" onClick={() => show({ name: 'users' })}>
      ← Users
    </button>
  );
  if (!row) {
    return (
      <section className="auth-session">
        {back}
        <p className="empty">Loading the session…</p>
      </section>
    );
  }
  return <SessionBody hostId={props.hostId} session={row.session} back={back} />;
}

function SessionBody(props: { hostId: string; session: AuthSession; back: React.JSX.Element }): React.JSX.Element {
  const { hostId, session: s } = props;
  const { auth } = useActions();
  const show = useUiStore((st) => st.show);
  const live = isAuthSessionLive(s.state);
  const now = useNow(live ? 1000 : 60_000);
  const browser = useFleetStore((st) => (s.browserVmId ? st.vms[vmKey(hostId, s.browserVmId)]?.vm : undefined));
  const desktopReady = live && s.state !== 'authenticating' && browser !== undefined && browser.ready.includes('vnc');

  return (
    <section className="auth-session" data-testid="auth-session" data-state={s.state}>
      <div className="vm-head">
        {props.back}
        <h2>
          {s.user} · {providerLabel(s.provider)}
        </h2>
        <span className={`pill auth-${s.state}`} data-testid="auth-state">
          {STATE_TEXT[s.state]}
        </span>
        <span className="muted">
          started by {s.startedBy} · {formatMs(totalMs(s, now))}
          {s.retryOf ? (
            <>
              {' '}
              · retry of{' '}
              <button
                type="button"
                className="link"
                onClick={() => show({ name: 'auth', hostId, sessionId: s.retryOf! })}
              >
                {s.retryOf}
              </button>
            </>
          ) : null}
        </span>
        <span className="spacer" />
        {live ? (
          <button
            type="button"
            disabled={!canCancel(s.state)}
            title={
              canCancel(s.state)
                ? 'Stop the login and destroy its browser VM'
                : 'The credential is captured and being written into the CLI VM: this step cannot be cancelled'
            }
            onClick={() => void auth.cancel(hostId, s.id)}
          >
            Cancel
          </button>
        ) : null}
        {canRetry(s.state) ? (
          <button type="button" onClick={() => void auth.retry(hostId, s.id)}>
            Retry
          </button>
        ) : null}
      </div>
      {s.error ? (
        <div className="row-error" role="alert" data-testid="auth-error">
          {s.error.message}
          {s.error.hint ? <div className="hint">{s.error.hint}</div> : null}
        </div>
      ) : null}
      <div className="auth-body">
        <div className="auth-side">
          <Timeline session={s} now={now} />
          {s.authorizeUrl ? <AuthorizeUrl url={s.authorizeUrl} /> : null}
          <Outcome session={s} />
          {s.result ? (
            <button
              type="button"
              className="primary"
              data-testid="open-cli-terminal"
              onClick={() => show({ name: 'vm', hostId, vmId: s.result!.cliVmId, tab: 'terminal' })}
            >
              Open terminal in {s.result.cliVmName}
            </button>
          ) : null}
        </div>
        <div className="auth-desktop">
          {desktopReady && s.browserVmId ? (
            <Suspense fallback={<div className="empty">Loading…</div>}>
              <DesktopView hostId={hostId} vmId={s.browserVmId} live={browser.state === 'running'} />
            </Suspense>
          ) : (
            <div className="empty" data-testid="auth-desktop-placeholder">
              {desktopPlaceholder(s, browser !== undefined)}
            </div>
          )}
        </div>
      </div>
    </section>
  );
}

function desktopPlaceholder(s: AuthSession, browserKnown: boolean): string {
  if (!isAuthSessionLive(s.state) || s.state === 'authenticating') {
    return s.transitions.some((t) => t.state === 'authenticating')
      ? 'The browser VM was destroyed when the credential was captured.'
      : 'The browser VM is gone.';
  }
  if (!s.browserVmId) return 'Creating the browser VM…';
  return browserKnown ? 'The browser VM is booting; its desktop shows when it is up.' : 'Waiting for the browser VM…';
}

function Timeline(props: { session: AuthSession; now: number }): React.JSX.Element {
  const spans = stateSpans(props.session, props.now);
  const reached = new Set(spans.map((sp) => sp.state));
  const ended = spans.find((sp) => sp.state !== 'completed' && !HAPPY_PATH.includes(sp.state));
  // The steps not reached yet show greyed out while the session is live.
  const ahead = isAuthSessionLive(props.session.state) ? HAPPY_PATH.filter((st) => !reached.has(st)) : [];
  return (
    <ol className="auth-timeline" data-testid="auth-timeline">
      {spans.map((sp, i) => (
        <li
          key={`${sp.state}-${i}`}
          className={`step done${sp.current ? ' current' : ''}${sp === ended ? ' end-bad' : ''}`}
          data-state={sp.state}
        >
          <span className="step-name">{STATE_TEXT[sp.state]}</span>{' '}
          <span className="mono muted">{new Date(sp.at).toLocaleTimeString()}</span>
          {sp.ms !== null ? <span className="muted"> · {formatMs(sp.ms)}</span> : null}
          {sp.reason ? <div className="muted step-reason">{sp.reason}</div> : null}
        </li>
      ))}
      {ahead.map((st) => (
        <li key={st} className="step ahead" data-state={st}>
          <span className="step-name">{STATE_TEXT[st]}</span>
        </li>
      ))}
    </ol>
  );
}

function AuthorizeUrl(props: { url: string }): React.JSX.Element {
  const toast = useUiStore((s) => s.toast);
  return (
    <div className="authorize-url">
      <div className="muted">Authorize URL (already open in the browser VM's Firefox):</div>
      <div className="url-row">
        <code className="mono" data-testid="authorize-url">
          {props.url}
        </code>
        <button
          type="button"
          onClick={() =>
            navigator.clipboard.writeText(props.url).then(
              () => toast('Authorize URL copied'),
              () => toast('Copying was refused: select the URL instead', 'error'),
            )
          }
        >
          Copy
        </button>
      </div>
    </div>
  );
}

/** credential captured → written to the CLI VM, verified → done. */
function Outcome(props: { session: AuthSession }): React.JSX.Element | null {
  const s = props.session;
  const captured = s.transitions.find((t) => t.state === 'authenticating');
  if (!captured) return null;
  const r = s.result;
  return (
    <ol className="auth-outcome" data-testid="auth-outcome">
      <li className="step done">
        credential captured <span className="mono muted">{new Date(captured.at).toLocaleTimeString()}</span>
      </li>
      {r ? (
        <li className="step done" data-testid="auth-written">
          written to CLI VM {r.cliVmName}, verified ({r.verifiedBy === 'status-check' ? 'status check' : 'hash'}) sha256{' '}
          <span className="mono" title={r.sha256}>
            {r.sha256.slice(0, 12)}
          </span>{' '}
          <span className="muted">
            ({r.transfer}, {r.path})
          </span>
        </li>
      ) : s.state === 'authenticating' ? (
        <li className="step ahead">writing it to CLI VM {s.cliVmName ?? ''} and verifying…</li>
      ) : null}
      {s.state === 'completed' ? (
        <li className="step done" data-testid="auth-done">
          done
        </li>
      ) : null}
    </ol>
  );
}
