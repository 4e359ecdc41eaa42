import crypto from 'node:crypto';
import { EventEmitter } from 'node:events';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import Provider, { type Interaction } from 'oidc-provider';

/**
 * The rig's OpenID provider for the `selftest` login (issue 12, item 7): oidc-provider 8 with one public native
 * client and interaction pages of its own (oidc-provider's dev interactions accept any password).
 */
export interface OidcRig {
  /** `http://<host>:<port>`, the issuer and the base of every endpoint. */
  issuer: string;
  clientId: string;
  username: string;
  /** Random per start; never logged. */
  password: string;
  /** How many times the login page was sent (the first view and each re-show after a wrong password). */
  loginPagesServed(): number;
  /**
   * Resolves once more than `afterCount` login pages have been served (default 0: the first one, or at once if
   * it was served already); pass `loginPagesServed()` from before a login to wait for that login's page.
   */
  waitForLoginPage(timeoutMs: number, afterCount?: number): Promise<void>;
  /** How many login pages a browser has shown, loaded with the username field focused (the page reports it). */
  loginPagesShown(): number;
  /**
   * Resolves once more than `afterCount` login pages have been shown: the moment a person would start typing (the
   * page tells the rig after the frame with the focused field is painted).
   */
  waitForLoginShown(timeoutMs: number, afterCount?: number): Promise<void>;
  /** Login forms submitted so far (right or wrong). */
  loginsSubmitted(): number;
  /**
   * Resolves with the outcome of the next login form submitted after `afterCount` submissions: `ok`, or what was
   * wrong (the username, or the password and the length typed: never the text).
   */
  waitForLoginSubmitted(timeoutMs: number, afterCount: number): Promise<LoginSubmission>;
  /** Successful token endpoint answers (authorization code and refresh grants). */
  tokensIssued(): number;
  /**
   * The next authorization request is refused as a provider refuses one (RFC 6749 §4.1.2.1): the browser is sent
   * back to the client's loopback callback with `error` and `error_description` (and its `state`), no page shown.
   */
  refuseNextAuthorization(error: string, description: string): void;
  /** Authorization requests refused so far. */
  authorizationsRefused(): number;
  close(): Promise<void>;
}

export type LoginSubmission =
  | { ok: true }
  | { ok: false; usernameOk: boolean; passwordOk: boolean; typedPasswordLength: number };

export interface OidcRigOptions {
  /** The only address it listens on. */
  host: string;
  /** Default: a free port the kernel picks. */
  port?: number;
}

export const SELFTEST_CLIENT_ID = 'firedeck-selftest';
export const SELFTEST_USERNAME = 'selftest';
/** RFC 8252 §7.3: the port of a loopback redirect URI is left out here and accepted whatever it is. */
export const SELFTEST_REDIRECT_URI = 'http://127.0.0.1/callback';
export const LOGIN_PAGE_TITLE = 'Firedeck selftest — sign in';
export const WRONG_LOGIN_MESSAGE = 'Wrong username or password';

const MAX_FORM_BYTES = 16 * 1024;

export async function startOidcProvider(options: OidcRigOptions): Promise<OidcRig> {
  const password = crypto.randomBytes(12).toString('base64url');
  const subject = `selftest-${crypto.randomBytes(4).toString('hex')}`;
  const events = new EventEmitter();
  let loginPages = 0;
  let shownPages = 0;
  const submissions: LoginSubmission[] = [];
  let tokens = 0;
  let refuseNext: { error: string; description: string } | null = null;
  let refused = 0;

  const server = http.createServer();
  server.headersTimeout = 10_000;
  server.requestTimeout = 30_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, options.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  const hostPart = options.host.includes(':') ? `[${options.host}]` : options.host;
  const issuer = `http://${hostPart}:${port}`;

  const signingKey = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ format: 'jwk' });
  const provider = new Provider(issuer, {
    clients: [
      {
        client_id: SELFTEST_CLIENT_ID,
        // native + http loopback: oidc-provider ignores the port when it matches the redirect URI (RFC 8252 §7.3).
        application_type: 'native',
        token_endpoint_auth_method: 'none',
        redirect_uris: [SELFTEST_REDIRECT_URI],
        grant_types: ['authorization_code', 'refresh_token'],
        response_types: ['code'],
        scope: 'openid offline_access',
      },
    ],
    // Public clients must use PKCE (oidc-provider's default too); only S256.
    pkce: { required: () => true, methods: ['S256'] },
    scopes: ['openid', 'offline_access'],
    claims: { openid: ['sub'] },
    findAccount: (_ctx, sub) =>
      sub === subject ? { accountId: subject, claims: () => ({ sub: subject }) } : undefined,
    interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
    features: { devInteractions: { enabled: false } },
    cookies: {
      keys: [crypto.randomBytes(32).toString('base64url')],
      // SameSite=None needs Secure, which plain http cannot have: browsers would drop the session cookie.
      long: { httpOnly: true, sameSite: 'lax', signed: true },
      short: { httpOnly: true, sameSite: 'lax', signed: true },
    },
    jwks: { keys: [{ ...signingKey, kid: crypto.randomBytes(8).toString('hex'), alg: 'RS256', use: 'sig' }] },
    ttl: {
      AccessToken: 3600,
      AuthorizationCode: 60,
      IdToken: 3600,
      Interaction: 3600,
      Session: 86_400,
      Grant: 86_400,
      RefreshToken: 14 * 86_400,
    },
  });
  provider.on('grant.success', () => {
    tokens += 1;
  });
  provider.on('server_error', (_ctx, err) => {
    console.error(`oidc rig: server error: ${(err as Error).message}`);
  });

  const providerCallback = provider.callback();
  server.on('request', (req, res) => {
    const url = new URL(req.url ?? '/', issuer);
    const shown = /^\/interaction\/([A-Za-z0-9_-]+)\/shown$/.exec(url.pathname);
    if (shown && req.method === 'POST') {
      shownPages += 1;
      events.emit('login-shown');
      res.writeHead(204, { 'cache-control': 'no-store' });
      res.end();
      return;
    }
    if (refuseNext && url.pathname === '/auth' && req.method === 'GET' && refuseAuthorization(url, res)) return;
    const m = /^\/interaction\/([A-Za-z0-9_-]+)(\/login)?$/.exec(url.pathname);
    if (!m) {
      providerCallback(req, res);
      return;
    }
    handleInteraction(req, res, m[2] === '/login').catch((err: unknown) => {
      if (!res.headersSent) sendHtml(res, 400, errorPage((err as Error).message));
      else res.destroy();
    });
  });

  /** Sends the browser back to the client's callback with the refusal; false (provider answers) if not its client. */
  function refuseAuthorization(url: URL, res: http.ServerResponse): boolean {
    const redirect = url.searchParams.get('redirect_uri');
    if (url.searchParams.get('client_id') !== SELFTEST_CLIENT_ID || redirect === null) return false;
    let back: URL;
    try {
      back = new URL(redirect);
    } catch {
      return false;
    }
    // Only the client's registered loopback callback, whatever its port (RFC 8252 §7.3).
    if (back.protocol !== 'http:' || back.hostname !== '127.0.0.1' || back.pathname !== '/callback') return false;
    const { error, description } = refuseNext!;
    refuseNext = null;
    refused += 1;
    back.search = '';
    back.searchParams.set('error', error);
    back.searchParams.set('error_description', description);
    const state = url.searchParams.get('state');
    if (state !== null) back.searchParams.set('state', state);
    back.searchParams.set('iss', issuer);
    res.writeHead(303, { location: back.toString(), 'cache-control': 'no-store' });
    res.end();
    return true;
  }

  async function handleInteraction(req: http.IncomingMessage, res: http.ServerResponse, submit: boolean) {
    const interaction = await provider.interactionDetails(req, res);
    if (interaction.prompt.name === 'consent') {
      // A session from an earlier login: consent is the rig's to give for its one client, never a second page.
      await finish(req, res, interaction, interaction.session?.accountId ?? subject, false);
      return;
    }
    if (interaction.prompt.name !== 'login') {
      sendHtml(res, 400, errorPage(`unexpected prompt ${interaction.prompt.name}`));
      return;
    }
    if (!submit) {
      if (req.method !== 'GET') {
        sendHtml(res, 405, errorPage('method not allowed'));
        return;
      }
      serveLoginPage(res, interaction.uid, null);
      return;
    }
    if (req.method !== 'POST') {
      sendHtml(res, 405, errorPage('method not allowed'));
      return;
    }
    const form = new URLSearchParams(await readBody(req));
    const usernameOk = sameSecret(form.get('username') ?? '', SELFTEST_USERNAME);
    const passwordOk = sameSecret(form.get('password') ?? '', password);
    const submission: LoginSubmission =
      usernameOk && passwordOk
        ? { ok: true }
        : { ok: false, usernameOk, passwordOk, typedPasswordLength: (form.get('password') ?? '').length };
    submissions.push(submission);
    events.emit('login-submitted');
    if (!submission.ok) {
      serveLoginPage(res, interaction.uid, WRONG_LOGIN_MESSAGE);
      return;
    }
    await finish(req, res, interaction, subject, true);
  }

  /** Login and consent in one result: the grant holds the scopes the client asked for (all it may ask for). */
  async function finish(
    req: http.IncomingMessage,
    res: http.ServerResponse,
    interaction: Interaction,
    accountId: string,
    withLogin: boolean,
  ): Promise<void> {
    if (interaction.params.client_id !== SELFTEST_CLIENT_ID) throw new Error('unknown client');
    const grant = new provider.Grant({ accountId, clientId: SELFTEST_CLIENT_ID });
    grant.addOIDCScope(typeof interaction.params.scope === 'string' ? interaction.params.scope : 'openid');
    const grantId = await grant.save();
    await provider.interactionFinished(
      req,
      res,
      { ...(withLogin ? { login: { accountId } } : {}), consent: { grantId } },
      { mergeWithLastSubmission: true },
    );
  }

  function serveLoginPage(res: http.ServerResponse, uid: string, error: string | null): void {
    const nonce = crypto.randomBytes(16).toString('base64');
    sendHtml(res, 200, loginPage(uid, error, nonce), nonce);
    loginPages += 1;
    events.emit('login-page');
  }

  return {
    issuer,
    clientId: SELFTEST_CLIENT_ID,
    username: SELFTEST_USERNAME,
    password,
    loginPagesServed: () => loginPages,
    waitForLoginPage(timeoutMs: number, afterCount = 0): Promise<void> {
      if (loginPages > afterCount) return Promise.resolve();
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          events.off('login-page', onPage);
          reject(new Error(`oidc rig: no login page was served within ${timeoutMs} ms`));
        }, timeoutMs);
        const onPage = (): void => {
          if (loginPages <= afterCount) return;
          clearTimeout(timer);
          events.off('login-page', onPage);
          resolve();
        };
        events.on('login-page', onPage);
      });
    },
    loginPagesShown: () => shownPages,
    loginsSubmitted: () => submissions.length,
    waitForLoginSubmitted(timeoutMs, afterCount) {
      const next = (): LoginSubmission | undefined => submissions[afterCount];
      const now = next();
      if (now) return Promise.resolve(now);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          events.off('login-submitted', onSubmitted);
          reject(new Error(`oidc rig: no login form was submitted within ${timeoutMs} ms`));
        }, timeoutMs);
        const onSubmitted = (): void => {
          const got = next();
          if (!got) return;
          clearTimeout(timer);
          events.off('login-submitted', onSubmitted);
          resolve(got);
        };
        events.on('login-submitted', onSubmitted);
      });
    },
    waitForLoginShown(timeoutMs: number, afterCount = 0): Promise<void> {
      if (shownPages > afterCount) return Promise.resolve();
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          events.off('login-shown', onShown);
          reject(new Error(`oidc rig: no login page was shown within ${timeoutMs} ms`));
        }, timeoutMs);
        const onShown = (): void => {
          if (shownPages <= afterCount) return;
          clearTimeout(timer);
          events.off('login-shown', onShown);
          resolve();
        };
        events.on('login-shown', onShown);
      });
    },
    tokensIssued: () => tokens,
    refuseNextAuthorization(error: string, description: string): void {
      refuseNext = { error, description };
    },
    authorizationsRefused: () => refused,
    close(): Promise<void> {
      return new Promise((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    },
  };
}

function sameSecret(given: string, expected: string): boolean {
  const a = crypto.createHash('sha256').update(given).digest();
  const b = crypto.createHash('sha256').update(expected).digest();
  return crypto.timingSafeEqual(a, b);
}

function readBody(req: http.IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    let size = 0;
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_FORM_BYTES) {
        reject(new Error('form too large'));
        req.destroy();
        return;
      }
      chunks.push(chunk);
    });
    req.once('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.once('error', reject);
  });
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

function sendHtml(res: http.ServerResponse, status: number, body: string, nonce?: string): void {
  res.writeHead(status, {
    'content-type': 'text/html; charset=utf-8',
    'content-length': Buffer.byteLength(body),
    'cache-control': 'no-store',
    // No form-action: browsers apply it to the redirects after the POST too, and those end at the client's callback.
    'content-security-policy':
      "default-src 'none'; style-src 'unsafe-inline'" +
      (nonce ? `; script-src 'nonce-${nonce}'; connect-src 'self'` : ''),
  });
  res.end(body);
}

function loginPage(uid: string, error: string | null, nonce: string): string {
  return `<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>${escapeHtml(LOGIN_PAGE_TITLE)}</title>
<style>body{font-family:sans-serif;margin:3em}label{display:block;margin:.6em 0}.error{color:#b00020}</style></head>
<body>
<h1>${escapeHtml(LOGIN_PAGE_TITLE)}</h1>
${error === null ? '' : `<p class="error" role="alert">${escapeHtml(error)}</p>`}
<form method="post" action="/interaction/${escapeHtml(uid)}/login" autocomplete="off">
<label>Username <input name="username" id="username" autofocus autocapitalize="none" spellcheck="false"></label>
<label>Password <input name="password" id="password" type="password"></label>
<button type="submit">Sign in</button>
</form>
<script nonce="${nonce}">
// Tells the rig when the page is on screen with the username field focused: when a person would start typing.
addEventListener('load', () => {
  document.getElementById('username').focus();
  requestAnimationFrame(() =>
    requestAnimationFrame(() => fetch('/interaction/${escapeHtml(uid)}/shown', { method: 'POST' }).catch(() => {})),
  );
});
</script>
</body>
</html>
`;
}

function errorPage(message: string): string {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Firedeck selftest — error</title></head><body><p>${escapeHtml(message)}</p></body></html>`;
}
