import { execFileSync, spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { PROVIDERS } from '../../src/shared/protocol/providers';
import { launchChromium, type ChromiumRig } from '../rig/chromium';
import { LOGIN_PAGE_TITLE, startOidcProvider, WRONG_LOGIN_MESSAGE, type OidcRig } from '../rig/oidc';
import { makeTempDir } from '../rig/tmp';

const LOGIN = fileURLToPath(new URL('../../images/common/files/firedeck-selftest-login', import.meta.url));
const FIELDS = [
  'issuer',
  'client_id',
  'subject',
  'access_token',
  'refresh_token',
  'id_token',
  'token_type',
  'expires_at',
  'obtained_at',
];

interface OsUser {
  name: string;
  uid: number;
  gid: number;
  home: string;
}

interface LoginRun {
  stderr(): string;
  stdout(): string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  kill(): void;
}

/** Hands each URL that the BROWSER script received to the test, in order. */
class UrlInbox {
  private readonly urls: string[] = [];
  private wake: (() => void) | null = null;
  readonly server: net.Server;

  constructor(socketPath: string) {
    this.server = net.createServer((conn) => {
      let text = '';
      conn.setEncoding('utf8');
      conn.on('data', (d: string) => {
        text += d;
      });
      conn.on('end', () => {
        this.urls.push(text.trim());
        this.wake?.();
      });
    });
    this.server.listen(socketPath);
  }

  async next(timeoutMs: number): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    while (this.urls.length === 0) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`BROWSER was not run within ${timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.wake = null;
    }
    return this.urls.shift()!;
  }
}

describe('selftest login: the image program against the rig OpenID provider, as an unprivileged user', () => {
  let rig: OidcRig;
  let chrome: ChromiumRig;
  let user: OsUser;
  let dir: string;
  let inbox: UrlInbox;
  let browserScript: string;
  let page: Page | null = null;
  /** Logins still running at the end of a test (a failed one) are stopped, or userdel would refuse. */
  const running = new Set<LoginRun>();

  const credentialDir = (): string => path.join(user.home, path.dirname(PROVIDERS.selftest.credential.path));
  const credentialFile = (): string => path.join(user.home, PROVIDERS.selftest.credential.path);

  function runLogin(args: string[], env: Record<string, string> = {}): LoginRun {
    let stderr = '';
    let stdout = '';
    const child = spawn(LOGIN, args, {
      uid: user.uid,
      gid: user.gid,
      cwd: user.home,
      env: {
        PATH: '/usr/local/bin:/usr/bin:/bin',
        HOME: user.home,
        USER: user.name,
        LANG: 'C.UTF-8',
        ...env,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      stdout += d;
    });
    child.stderr.setEncoding('utf8').on('data', (d: string) => {
      stderr += d;
    });
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
      child.once('close', (code, signal) => resolve({ code, signal })),
    );
    const run: LoginRun = { stderr: () => stderr, stdout: () => stdout, exited, kill: () => child.kill('SIGTERM') };
    running.add(run);
    void exited.then(() => running.delete(run));
    return run;
  }

  function startLogin(): LoginRun {
    return runLogin([], {
      FIREDECK_SELFTEST_ISSUER: rig.issuer,
      FIREDECK_SELFTEST_CLIENT_ID: rig.clientId,
      BROWSER: browserScript,
    });
  }

  /** Opens the URL the login handed to BROWSER and waits until the rig served its login page for it. */
  async function openLoginPage(): Promise<{ url: URL; page: Page }> {
    const before = rig.loginPagesServed();
    const url = new URL(await inbox.next(20_000));
    page = await chrome.newPage();
    await page.goto(url.href);
    await rig.waitForLoginPage(20_000, before);
    expect(await page.title()).toBe(LOGIN_PAGE_TITLE);
    // The username field has autofocus: a person starts typing at once.
    expect(await page.evaluate(() => document.activeElement?.getAttribute('name'))).toBe('username');
    return { url, page };
  }

  /** As a person types: keys into the focused field, Tab, keys, Enter. */
  async function typeLogin(p: Page, username: string, password: string): Promise<void> {
    await p.keyboard.type(username);
    await p.keyboard.press('Tab');
    await p.keyboard.type(password);
    await p.keyboard.press('Enter');
  }

  beforeAll(async () => {
    rig = await startOidcProvider({ host: '127.0.0.1' });
    chrome = await launchChromium();
    const name = `fdst${crypto.randomBytes(4).toString('hex')}`;
    execFileSync('useradd', ['--create-home', '--shell', '/usr/sbin/nologin', '--user-group', name]);
    const home = path.join('/home', name);
    user = {
      name,
      uid: Number(execFileSync('id', ['-u', name], { encoding: 'utf8' }).trim()),
      gid: Number(execFileSync('id', ['-g', name], { encoding: 'utf8' }).trim()),
      home,
    };
    expect(user.uid).toBeGreaterThan(0);
    dir = makeTempDir('selftest-login');
    fs.chmodSync(dir, 0o755);
    const socketPath = path.join(dir, 'browser.sock');
    inbox = new UrlInbox(socketPath);
    await new Promise<void>((resolve) => inbox.server.once('listening', () => resolve()));
    fs.chmodSync(socketPath, 0o666);
    // BROWSER: tells the test which URL it was asked to open (the test then opens it in Chromium).
    browserScript = path.join(dir, 'browser');
    fs.writeFileSync(
      browserScript,
      `#!/usr/bin/node\nimport net from 'node:net';\nconst s = net.connect(${JSON.stringify(socketPath)}, () => s.end(process.argv[2]));\n`,
      { mode: 0o755 },
    );
  });

  afterEach(async () => {
    for (const run of running) {
      run.kill();
      await run.exited;
    }
    await page?.close();
    page = null;
    fs.rmSync(credentialDir(), { recursive: true, force: true });
  });

  afterAll(async () => {
    await chrome?.close();
    await rig?.close();
    await new Promise<void>((resolve) => (inbox ? inbox.server.close(() => resolve()) : resolve()));
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
    if (user) execFileSync('userdel', ['--remove', user.name], { stdio: 'ignore' });
  });

  it('the rig provider listens on the given address only', async () => {
    const { hostname, port } = new URL(rig.issuer);
    expect(hostname).toBe('127.0.0.1');
    // Linux answers all of 127/8 on lo; a socket bound to 127.0.0.1 alone refuses the others.
    const refused = await new Promise<string>((resolve) => {
      const s = net.connect({ host: '127.0.0.2', port: Number(port) });
      s.once('connect', () => {
        s.destroy();
        resolve('connected');
      });
      s.once('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
    });
    expect(refused).toBe('ECONNREFUSED');
  });

  it('an issuer that does not answer: exit 1 naming the discovery document, no file', async () => {
    const closed = await startOidcProvider({ host: '127.0.0.1' });
    await closed.close();
    const run = runLogin([], { FIREDECK_SELFTEST_ISSUER: closed.issuer, FIREDECK_SELFTEST_CLIENT_ID: rig.clientId });
    expect((await run.exited).code).toBe(1);
    expect(run.stderr()).toContain(
      `cannot fetch the discovery document from ${closed.issuer}/.well-known/openid-configuration`,
    );
    expect(fs.existsSync(credentialDir())).toBe(false);
  });

  it('status before any login: exit 1 and why', async () => {
    const run = runLogin(['status']);
    expect((await run.exited).code).toBe(1);
    expect(run.stderr()).toMatch(/not logged in: .*credentials\.json does not exist/);
  });

  it('without the issuer or client id in the environment: exit 2 with what is missing', async () => {
    const run = runLogin([], { FIREDECK_SELFTEST_ISSUER: rig.issuer });
    expect((await run.exited).code).toBe(2);
    expect(run.stderr()).toContain('FIREDECK_SELFTEST_CLIENT_ID');
    expect(run.stderr()).not.toContain('FIREDECK_SELFTEST_ISSUER and');
  });

  it('a login typed into Chromium writes the credential file (0600 in a 0700 dir, owned by the user)', async () => {
    const tokensBefore = rig.tokensIssued();
    const run = startLogin();
    const { url, page: p } = await openLoginPage();
    // What the program asked for: PKCE S256, a loopback callback with a port of its own, the two scopes.
    expect(url.origin).toBe(rig.issuer);
    expect(url.searchParams.get('code_challenge_method')).toBe('S256');
    expect(url.searchParams.get('code_challenge')).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(url.searchParams.get('scope')).toBe('openid offline_access');
    expect(url.searchParams.get('prompt')).toBe('login consent');
    expect(url.searchParams.get('redirect_uri')).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/callback$/);
    const submitted = rig.loginsSubmitted();
    await typeLogin(p, rig.username, rig.password);
    expect(await rig.waitForLoginSubmitted(20_000, submitted)).toEqual({ ok: true });
    await p.waitForFunction(() => document.body.innerText.includes('login complete'), undefined, { timeout: 20_000 });
    expect(await p.textContent('body')).toContain('Firedeck selftest: login complete — you can close this tab');
    expect((await run.exited).code).toBe(0);
    expect(rig.tokensIssued()).toBe(tokensBefore + 1);

    const dirStat = fs.statSync(credentialDir());
    const fileStat = fs.statSync(credentialFile());
    expect(dirStat.mode & 0o777).toBe(0o700);
    expect(fileStat.mode & 0o777).toBe(0o600);
    expect([dirStat.uid, dirStat.gid, fileStat.uid, fileStat.gid]).toEqual([user.uid, user.gid, user.uid, user.gid]);
    expect(fs.readdirSync(credentialDir())).toEqual(['credentials.json']);
    const record = JSON.parse(fs.readFileSync(credentialFile(), 'utf8')) as Record<string, string>;
    expect(Object.keys(record).sort()).toEqual([...FIELDS].sort());
    for (const field of PROVIDERS.selftest.credential.requiredFields) expect(record).toHaveProperty(field);
    expect(record.issuer).toBe(rig.issuer);
    expect(record.client_id).toBe(rig.clientId);
    expect(record.subject).toMatch(/^selftest-/);
    expect(record.token_type).toBe('Bearer');
    for (const field of ['access_token', 'refresh_token', 'id_token'])
      expect(record[field]!.length).toBeGreaterThan(20);
    const claims = JSON.parse(Buffer.from(record.id_token!.split('.')[1]!, 'base64url').toString('utf8')) as {
      sub: string;
      aud: string;
    };
    expect([claims.sub, claims.aud]).toEqual([record.subject, rig.clientId]);
    expect(Date.parse(record.obtained_at!)).toBeLessThanOrEqual(Date.now());
    expect(Date.parse(record.expires_at!)).toBeGreaterThan(Date.parse(record.obtained_at!));
    // The authorize URL is printed; no token ever is.
    expect(run.stderr()).toContain(url.href);
    for (const field of ['access_token', 'refresh_token', 'id_token']) {
      expect(run.stderr()).not.toContain(record[field]);
      expect(run.stdout()).not.toContain(record[field]);
    }

    // The refresh token works: the provider answers a refresh grant for this public client.
    const meta = (await (await fetch(`${rig.issuer}/.well-known/openid-configuration`)).json()) as {
      token_endpoint: string;
    };
    const refreshed = await fetch(meta.token_endpoint, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({
        grant_type: 'refresh_token',
        refresh_token: record.refresh_token!,
        client_id: rig.clientId,
      }),
    });
    expect(refreshed.status).toBe(200);
    expect(((await refreshed.json()) as { access_token?: string }).access_token).toBeTruthy();
    expect(rig.tokensIssued()).toBe(tokensBefore + 2);

    const status = runLogin(['status']);
    expect((await status.exited).code).toBe(0);
    expect(status.stdout().trim()).toBe(`logged in as ${record.subject} at ${rig.issuer}`);
  });

  it('a wrong password: the page says so and stays, and no file is written', async () => {
    const run = startLogin();
    const { page: p } = await openLoginPage();
    const before = rig.loginPagesServed();
    const submitted = rig.loginsSubmitted();
    await typeLogin(p, rig.username, `${rig.password}x`);
    // The rig says what was wrong, and how long the typed password was, never the text.
    expect(await rig.waitForLoginSubmitted(20_000, submitted)).toEqual({
      ok: false,
      usernameOk: true,
      passwordOk: false,
      typedPasswordLength: rig.password.length + 1,
    });
    await rig.waitForLoginPage(20_000, before);
    await p.waitForFunction((m) => document.body?.innerText.includes(m), WRONG_LOGIN_MESSAGE, { timeout: 20_000 });
    expect(await p.title()).toBe(LOGIN_PAGE_TITLE);
    expect(p.url()).toMatch(new RegExp(`^${rig.issuer}/interaction/`));
    expect(fs.existsSync(credentialDir())).toBe(false);
    run.kill();
    expect((await run.exited).signal).toBe('SIGTERM');
    expect(fs.existsSync(credentialDir())).toBe(false);
  });

  it('a forged callback with a wrong state is refused: exit 1, no file', async () => {
    const run = startLogin();
    const url = new URL(await inbox.next(20_000));
    const callback = new URL(url.searchParams.get('redirect_uri')!);
    callback.searchParams.set('code', 'forged-code');
    callback.searchParams.set('state', 'not-the-state');
    const res = await fetch(callback);
    expect(res.status).toBe(400);
    expect(await res.text()).toContain('wrong state');
    expect((await run.exited).code).toBe(1);
    expect(run.stderr()).toContain('wrong state');
    expect(fs.existsSync(credentialDir())).toBe(false);
  });

  it('a callback with the right state but a code the provider never issued: token endpoint refusal, exit 1, no file', async () => {
    const run = startLogin();
    const url = new URL(await inbox.next(20_000));
    const callback = new URL(url.searchParams.get('redirect_uri')!);
    callback.searchParams.set('code', 'never-issued');
    callback.searchParams.set('state', url.searchParams.get('state')!);
    const res = await fetch(callback);
    expect(res.status).toBe(400);
    expect(await res.text()).toContain('the token endpoint refused the code (invalid_grant');
    expect((await run.exited).code).toBe(1);
    expect(run.stderr()).toContain('the token endpoint refused the code (invalid_grant');
    expect(fs.existsSync(credentialDir())).toBe(false);
  });

  it('no callback before the timeout: exit 1, no file', async () => {
    const run = runLogin([], {
      FIREDECK_SELFTEST_ISSUER: rig.issuer,
      FIREDECK_SELFTEST_CLIENT_ID: rig.clientId,
      FIREDECK_SELFTEST_TIMEOUT_S: '2',
    });
    expect((await run.exited).code).toBe(1);
    expect(run.stderr()).toContain('BROWSER is not set');
    expect(run.stderr()).toContain('no callback within 2 seconds');
    expect(fs.existsSync(credentialDir())).toBe(false);
  });

  it("the provider's error in the callback ends the login: exit 1, the error shown, no file", async () => {
    const run = startLogin();
    const url = new URL(await inbox.next(20_000));
    const callback = new URL(url.searchParams.get('redirect_uri')!);
    callback.searchParams.set('error', 'access_denied');
    callback.searchParams.set('error_description', 'the user said no');
    callback.searchParams.set('state', url.searchParams.get('state')!);
    callback.searchParams.set('iss', rig.issuer);
    const res = await fetch(callback);
    expect(res.status).toBe(400);
    expect(await res.text()).toContain('access_denied');
    expect((await run.exited).code).toBe(1);
    expect(run.stderr()).toContain('the provider refused the login: access_denied (the user said no)');
    expect(fs.existsSync(credentialDir())).toBe(false);
  });

  it('the rig refusing the authorization (its refuseNextAuthorization) ends the login opened in Chromium: exit 1, no file', async () => {
    const run = startLogin();
    const url = new URL(await inbox.next(20_000));
    rig.refuseNextAuthorization('access_denied', 'refused by the test');
    const before = rig.authorizationsRefused();
    page = await chrome.newPage();
    await page.goto(url.href);
    // The browser followed the refusal to the login's callback, which answers with the error.
    await page.waitForFunction(() => document.body?.innerText.includes('access_denied'), undefined, {
      timeout: 20_000,
    });
    expect(rig.authorizationsRefused()).toBe(before + 1);
    expect((await run.exited).code).toBe(1);
    expect(run.stderr()).toContain('the provider refused the login: access_denied (refused by the test)');
    expect(fs.existsSync(credentialDir())).toBe(false);
    await page.close();
    page = null;
    // Only the next one: the login after it gets the login page again.
    startLogin();
    await openLoginPage();
    expect(rig.authorizationsRefused()).toBe(before + 1);
  });

  it('status refuses a file without a refresh token', async () => {
    fs.mkdirSync(credentialDir(), { mode: 0o700 });
    fs.writeFileSync(
      credentialFile(),
      JSON.stringify({ issuer: rig.issuer, access_token: 'a', refresh_token: '', id_token: 'i', obtained_at: 'now' }),
    );
    fs.chownSync(credentialDir(), user.uid, user.gid);
    fs.chownSync(credentialFile(), user.uid, user.gid);
    const run = runLogin(['status']);
    expect((await run.exited).code).toBe(1);
    expect(run.stderr()).toContain('empty refresh_token');
  });
});
