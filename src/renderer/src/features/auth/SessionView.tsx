import { lazy, Suspense, useEffect, useState } from 'react';
import { isAuthSessionLive, type AuthSession } from '../../../../shared/protocol/auth';
import { useActions } from '../../state/actionsContext';
import { sessionKey, useAuthStore } from '../../state/authStore';
import { useFleetStore, vmKey } from '../../state/fleetStore';
import { useUiStore } from '../../state/uiStore';
import { useNow } from '../fleet/useNow';
import {
  HAPPY_PATH,
  canCancel,
  canRetry,
  checkPastedCode,
  formatMs,
  happyPath,
  providerLabel,
  stateSpans,
  stateText,
  totalMs,
} from './authModel';

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
          {stateText(s.state, s.mode)}
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
                ? s.mode === 'headless'
                  ? 'Stop the login in the CLI VM'
                  : 'Stop the login and destroy its browser VM'
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
          {s.mode === 'browser' && s.authorizeUrl ? <AuthorizeUrl url={s.authorizeUrl} /> : null}
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
        {s.mode === 'headless' ? (
          <HeadlessLogin hostId={hostId} session={s} />
        ) : (
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
        )}
      </div>
    </section>
  );
}

/**
 * A headless login (no browser VM): the link to open on any device, the one-time code to enter there (device-code
 * logins), or the field to paste back the code the provider's page shows (paste-code logins).
 */
function HeadlessLogin(props: { hostId: string; session: AuthSession }): React.JSX.Element {
  const s = props.session;
  const { auth } = useActions();
  const [code, setCode] = useState('');
  const [why, setWhy] = useState<string | null>(null);
  const [sending, setSending] = useState(false);
  const submit = (e: React.FormEvent): void => {
    e.preventDefault();
    const checked = checkPastedCode(code);
    if (!checked.ok) {
      setWhy(checked.why);
      return;
    }
    setWhy(null);
    setSending(true);
    void auth.submitCode(props.hostId, s.id, checked.code).then((ok) => {
      setSending(false);
      // The code is a secret: it leaves the field once it was handed over.
      if (ok) setCode('');
    });
  };
  if (!s.authorizeUrl) {
    return (
      <div className="auth-headless empty" data-testid="auth-headless">
        {isAuthSessionLive(s.state)
          ? `The login runs in the CLI VM ${s.cliVmName ?? ''}; its link shows here when the CLI prints it.`
          : 'The login ended before it printed a link.'}
      </div>
    );
  }
  return (
    <div className="auth-headless" data-testid="auth-headless">
      <CopyRow
        label="Open this link in a browser (any device) and log in as the user:"
        value={s.authorizeUrl}
        testId="authorize-url"
        copied="Link copied"
      />
      {s.userCode ? (
        <CopyRow
          label="Then enter this one-time code on that page:"
          value={s.userCode}
          testId="user-code"
          copied="Code copied"
        />
      ) : null}
      {s.awaitingCode ? (
        <form className="paste-code" onSubmit={submit} data-testid="paste-code">
          <label>
            <span className="muted">Paste the code the page shows after the login:</span>
            <input
              value={code}
              onChange={(e) => setCode(e.target.value)}
              autoComplete="off"
              spellCheck={false}
              aria-label="Code from the provider's page"
              data-testid="paste-code-input"
            />
          </label>
          <button type="submit" className="primary" disabled={sending || code.trim() === ''}>
            Submit
          </button>
          {why ? (
            <span className="row-error" role="alert">
              {why}
            </span>
          ) : null}
        </form>
      ) : null}
    </div>
  );
}

function CopyRow(props: { label: string; value: string; testId: string; copied: string }): React.JSX.Element {
  const toast = useUiStore((s) => s.toast);
  return (
    <div className="authorize-url">
      <div className="muted">{props.label}</div>
      <div className="url-row">
        <code className="mono" data-testid={props.testId}>
          {props.value}
        </code>
        <button
          type="button"
          onClick={() =>
            navigator.clipboard.writeText(props.value).then(
              () => toast(props.copied),
              () => toast('Copying was refused: select the text instead', 'error'),
            )
          }
        >
          Copy
        </button>
      </div>
    </div>
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
  const path = happyPath(props.session.mode);
  const ahead = isAuthSessionLive(props.session.state) ? path.filter((st) => !reached.has(st)) : [];
  return (
    <ol className="auth-timeline" data-testid="auth-timeline">
      {spans.map((sp, i) => (
        <li
          key={`${sp.state}-${i}`}
          className={`step done${sp.current ? ' current' : ''}${sp === ended ? ' end-bad' : ''}`}
          data-state={sp.state}
        >
          <span className="step-name">{stateText(sp.state, props.session.mode)}</span>{' '}
          <span className="mono muted">{new Date(sp.at).toLocaleTimeString()}</span>
          {sp.ms !== null ? <span className="muted"> · {formatMs(sp.ms)}</span> : null}
          {sp.reason ? <div className="muted step-reason">{sp.reason}</div> : null}
        </li>
      ))}
      {ahead.map((st) => (
        <li key={st} className="step ahead" data-state={st}>
          <span className="step-name">{stateText(st, props.session.mode)}</span>
        </li>
      ))}
    </ol>
  );
}

function AuthorizeUrl(props: { url: string }): React.JSX.Element {
  return (
    <CopyRow
      label="Authorize URL (already open in the browser VM's Firefox):"
      value={props.url}
      testId="authorize-url"
      copied="Authorize URL copied"
    />
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
        {s.mode === 'headless' ? 'login ended, checking it' : 'credential captured'}{' '}
        <span className="mono muted">{new Date(captured.at).toLocaleTimeString()}</span>
      </li>
      {r ? (
        <li className="step done" data-testid="auth-written">
          {r.transfer === 'in_place' ? 'saved in' : 'written to'} CLI VM {r.cliVmName}, verified (
          {r.verifiedBy === 'status-check' ? 'status check' : 'hash'}) sha256{' '}
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
