import { renderToStaticMarkup } from 'react-dom/server';
import { beforeEach, describe, expect, it } from 'vitest';
import type { Vm } from '../../../../shared/protocol/vm';
import { ActionsContext, type Actions } from '../../state/actionsContext';
import { useAuthStore } from '../../state/authStore';
import { useFleetStore } from '../../state/fleetStore';
import { useHostsStore } from '../../state/hostsStore';
import { useUiStore } from '../../state/uiStore';
import { result, session } from './authFixtures';
import { HistoryView } from './HistoryView';
import { SessionView } from './SessionView';
import { UsersView } from './UsersView';

/** The views rendered to HTML (no DOM here): what they show for given store contents. */
function render(el: React.JSX.Element): string {
  // Rendered to a string, a store hook reads the store's server snapshot, which zustand takes to be its initial
  // state object: it gets the state the test put in.
  for (const store of [useAuthStore, useFleetStore, useHostsStore, useUiStore]) {
    Object.assign(store.getInitialState(), store.getState());
  }
  return renderToStaticMarkup(<ActionsContext.Provider value={{} as Actions}>{el}</ActionsContext.Provider>);
}

const host = {
  id: 'local',
  name: 'rig',
  kind: 'local',
  address: '',
  port: 0,
  user: '',
  auth: null,
  hostKeyFingerprint: null,
} as const;

beforeEach(() => {
  useHostsStore.setState({
    hosts: [host],
    selectedHostId: 'local',
    statuses: {
      local: { hostId: 'local', state: 'connected', info: null, error: null, attempt: 0, nextAttemptAt: null },
    },
  });
  useFleetStore.setState({ vms: {} });
  useAuthStore.setState({ sessions: {}, more: {}, addedUsers: {} });
});

describe('the users view', () => {
  it('lists CLI VM owners and session users with each provider state, Connect disabled while a login runs', () => {
    useFleetStore.setState({
      vms: { 'local/vm-1': { hostId: 'local', vm: { id: 'vm-1', kind: 'cli', owner: 'zed@x.org' } as Vm } },
    });
    const live = session({
      user: 'ada@example.org',
      path: [
        ['pending', 0],
        ['awaiting_user_auth', 4],
      ],
    });
    const failed = session({
      user: 'ada@example.org',
      provider: 'codex',
      path: [
        ['pending', 0],
        ['failed', 4],
      ],
      error: { kind: 'provider_error', message: 'Login refused', hint: 'Check the account' },
    });
    const done = session({
      user: 'zed@x.org',
      provider: 'gemini_cli',
      path: [
        ['pending', 0],
        ['completed', 9],
      ],
      result: result('zed-cli', 9),
    });
    useAuthStore.getState().apply('local', [live, failed, done]);
    const html = render(<UsersView />);
    expect(html).toContain('data-testid="user-row-ada@example.org"');
    expect(html).toContain('data-testid="user-row-zed@x.org"');
    expect(html).toMatch(/data-testid="provider-ada@example.org-selftest" data-state="in_progress"/);
    expect(html).toContain('waiting for the user&#x27;s login');
    expect(html).toMatch(/provider-ada@example.org-codex" data-state="failed".*Login refused.*Check the account/);
    expect(html).toMatch(/provider-zed@x.org-gemini_cli" data-state="connected".*CLI VM zed-cli/);
    // One disabled Connect: the live selftest login's.
    expect(html.match(/<button type="button" disabled="" title="A login for this user/g)?.length).toBe(1);
  });
});

describe('the session view', () => {
  it('while authenticating: Cancel is disabled with its reason, the desktop is gone', () => {
    const s = session({
      path: [
        ['pending', 0],
        ['vm_created', 1],
        ['ready', 30],
        ['awaiting_user_auth', 31],
        ['authenticating', 60],
      ],
      authorizeUrl: 'http://10.213.66.1:4000/auth?client_id=x',
      browserVmId: 'vm-000000bb',
      cliVmName: 'ada-cli',
    });
    useAuthStore.getState().apply('local', [s]);
    const html = render(<SessionView hostId="local" sessionId={s.id} />);
    expect(html).toMatch(/<button type="button" disabled="" title="The credential is captured[^"]*">Cancel/);
    expect(html).toContain('credential captured');
    expect(html).toContain('writing it to CLI VM ada-cli and verifying');
    expect(html).toContain('The browser VM was destroyed when the credential was captured.');
    expect(html).toContain('http://10.213.66.1:4000/auth?client_id=x');
    expect(html).not.toContain('Retry');
  });

  it('once completed: written, verified, its hash, and the terminal of the CLI VM', () => {
    const s = session({
      path: [
        ['pending', 0],
        ['authenticating', 60],
        ['completed', 70],
      ],
      result: result('ada-cli', 69),
      browserVmId: 'vm-000000bb',
    });
    useAuthStore.getState().apply('local', [s]);
    const html = render(<SessionView hostId="local" sessionId={s.id} />);
    expect(html).toMatch(/written to CLI VM ada-cli, verified \(status check\) sha256 .*abababababab/);
    expect(html).toContain('Open terminal in ada-cli');
    expect(html).not.toContain('>Cancel<');
  });

  it('after a failure: the error with its hint, and Retry', () => {
    const s = session({
      path: [
        ['pending', 0],
        ['failed', 5],
      ],
      error: { kind: 'unavailable', message: 'No browser image', hint: 'Install one: firedeckd image add browser' },
    });
    useAuthStore.getState().apply('local', [s]);
    const html = render(<SessionView hostId="local" sessionId={s.id} />);
    expect(html).toMatch(/No browser image<div class="hint">Install one: firedeckd image add browser/);
    expect(html).toContain('>Retry<');
  });
});

describe('a headless login', () => {
  it('in the users view: "Link & code" where the provider offers a headless login, not for the self-test', () => {
    useAuthStore.getState().addUser('local', 'ada@example.org');
    const html = render(<UsersView />);
    for (const p of ['codex', 'claude_code', 'gemini_cli']) {
      expect(html).toContain(`data-testid="headless-ada@example.org-${p}"`);
    }
    expect(html).not.toContain('headless-ada@example.org-selftest');
    expect(html.match(/>Link &amp; code</g)?.length).toBe(3);
  });

  it('paste-code: the link with Copy, the field for the code and Submit; no desktop', () => {
    const s = session({
      provider: 'gemini_cli',
      mode: 'headless',
      path: [
        ['pending', 0],
        ['awaiting_user_auth', 40],
      ],
      cliVmName: 'ada-cli',
      authorizeUrl: 'https://accounts.google.com/o/oauth2/v2/auth?client_id=x&code_challenge=y',
      awaitingCode: true,
    });
    useAuthStore.getState().apply('local', [s]);
    const html = render(<SessionView hostId="local" sessionId={s.id} />);
    expect(html).toMatch(
      /data-testid="authorize-url">https:\/\/accounts.google.com\/o\/oauth2\/v2\/auth\?client_id=x&amp;code_challenge=y<\/code><button type="button">Copy/,
    );
    expect(html).toContain('data-testid="paste-code-input"');
    expect(html).toMatch(/<button type="submit" class="primary" disabled="">Submit/);
    expect(html).toContain('waiting for the user to open the link');
    expect(html).not.toContain('auth-desktop');
    expect(html).not.toContain('browser VM');
    // The timeline ahead is the headless one: no browser VM steps.
    expect(html).toContain('checking the login in the CLI VM');
    expect(html).not.toContain('browser VM booting');
  });

  it('device code: the link and the one-time code, no field to paste into', () => {
    const s = session({
      provider: 'codex',
      mode: 'headless',
      path: [
        ['pending', 0],
        ['awaiting_user_auth', 40],
      ],
      authorizeUrl: 'https://auth.openai.com/codex/device',
      userCode: 'ABCD-12345',
    });
    useAuthStore.getState().apply('local', [s]);
    const html = render(<SessionView hostId="local" sessionId={s.id} />);
    expect(html).toContain('data-testid="authorize-url">https://auth.openai.com/codex/device<');
    expect(html).toMatch(/data-testid="user-code">ABCD-12345<\/code><button type="button">Copy/);
    expect(html).not.toContain('paste-code');
  });

  it("before the CLI printed its link, and after a failure with the CLI's words", () => {
    const waiting = session({ provider: 'claude_code', mode: 'headless', cliVmName: 'ada-cli' });
    const failed = session({
      provider: 'claude_code',
      mode: 'headless',
      path: [
        ['pending', 0],
        ['failed', 9],
      ],
      error: { kind: 'auth_failed', message: "Claude Code's login failed: OAuth error: fetch failed" },
    });
    useAuthStore.getState().apply('local', [waiting, failed]);
    expect(render(<SessionView hostId="local" sessionId={waiting.id} />)).toContain(
      'The login runs in the CLI VM ada-cli; its link shows here when the CLI prints it.',
    );
    const html = render(<SessionView hostId="local" sessionId={failed.id} />);
    expect(html).toContain('OAuth error: fetch failed');
    expect(html).toContain('The login ended before it printed a link.');
    expect(html).toContain('>Retry<');
  });
});

describe('the sessions history', () => {
  it("shows who ran each session, for whom, each state's time and the end", () => {
    const s = session({
      startedBy: 'helpdesk7',
      path: [
        ['pending', 0],
        ['vm_created', 2],
        ['failed', 32],
      ],
      error: { kind: 'x', message: 'Issuer unreachable' },
    });
    useAuthStore.getState().apply('local', [s]);
    const html = render(<HistoryView />);
    expect(html).toContain('helpdesk7');
    expect(html).toContain('pending 2.0 s · vm_created 30 s');
    expect(html).toContain('Issuer unreachable');
  });
});
