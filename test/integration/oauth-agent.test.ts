import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

/**
 * The browser VM's oauth agent (images/browser/files/agent.mjs) on the host, as a real unprivileged OS user of
 * its own (the guest runs it as the desktop user), with the test-only overrides of its guest paths: token file,
 * port, the URL opener (a recorder instead of Firefox), the login's PATH. The logins are small fake CLIs under
 * the names of the provider table's argv (`codex`, `claude`, `gemini`, `firedeck-selftest-login`), which use the
 * image's real BROWSER script and xdg-open wrapper; and, if it installs, the real `codex` from the npm registry.
 */

const FILES = path.resolve(__dirname, '../../images/browser/files');
const USER = `fdoa-${crypto.randomBytes(3).toString('hex')}`;
const TOKEN = crypto.randomBytes(24).toString('base64url');
// What the fake logins write as their refresh token: it must reach /credentials/get and no log, error or disk.
const SECRET = `rt-${crypto.randomBytes(16).toString('hex')}`;
const AUTHORIZE = 'https://auth.example.test/oauth/authorize?client_id=fake&state=s1';

let base: string;
let home: string;
let logDir: string;
let runDir: string;
let uid: number;
let gid: number;
// The image's files, copied out of the repository (whose package.json would make any .js an ES module) into the
// layout they have in the guest: /opt/firedeck/agent, /usr/local/lib/firedeck, /usr/local/bin.
let AGENT: string;
let BROWSER_OPEN: string;
let XDG_OPEN: string;

beforeAll(() => {
  base = fs.mkdtempSync(path.join(os.tmpdir(), 'fd-oauth-agent-'));
  fs.chmodSync(base, 0o755);
  home = path.join(base, 'home');
  execFileSync('useradd', ['--create-home', '--home-dir', home, '--shell', '/bin/sh', USER]);
  uid = Number(execFileSync('id', ['-u', USER], { encoding: 'utf8' }).trim());
  gid = Number(execFileSync('id', ['-g', USER], { encoding: 'utf8' }).trim());
  logDir = path.join(base, 'log');
  runDir = path.join(base, 'run');
  for (const dir of [logDir, runDir]) {
    fs.mkdirSync(dir, { mode: 0o700 });
    fs.chownSync(dir, uid, gid);
  }
  const tokenFile = path.join(base, 'agent-token');
  fs.writeFileSync(tokenFile, `${TOKEN}\n`, { mode: 0o600 });
  fs.chownSync(tokenFile, uid, gid);
  for (const fifo of ['go-codex', 'go-gemini']) {
    execFileSync('mkfifo', ['-m', '0600', path.join(logDir, fifo)]);
    fs.chownSync(path.join(logDir, fifo), uid, gid);
  }
  AGENT = install('agent.mjs', 'opt/firedeck/agent', 0o644);
  install('providers.mjs', 'opt/firedeck/agent', 0o644);
  BROWSER_OPEN = install('browser-open', 'usr/local/lib/firedeck', 0o755);
  XDG_OPEN = install('xdg-open', 'usr/local/bin', 0o755);
  fs.mkdirSync(path.join(base, 'bin'));
  writeFakes();
});

function install(name: string, dir: string, mode: number): string {
  const dest = path.join(base, dir, name);
  fs.mkdirSync(path.dirname(dest), { recursive: true });
  fs.copyFileSync(path.join(FILES, name), dest);
  fs.chmodSync(dest, mode);
  return dest;
}

afterAll(async () => {
  try {
    execFileSync('pkill', ['-KILL', '-u', USER], { stdio: 'ignore' });
  } catch {
    // none left, as it should be
  }
  await processesOfUserAfter(5000);
  execFileSync('userdel', [USER]);
  fs.rmSync(base, { recursive: true, force: true });
});

function script(file: string, body: string): void {
  fs.writeFileSync(file, `#!/bin/sh\n${body}`, { mode: 0o755 });
}

function writeFakes(): void {
  const bin = path.join(base, 'bin');
  const L = logDir;
  script(
    path.join(bin, 'codex'),
    `env > ${L}/env-codex
printf '%s\\n' "$@" > ${L}/argv-codex
"$BROWSER" '${AUTHORIZE}' || { echo "BROWSER failed" >&2; exit 5; }
mkdir -p "$HOME/.codex"
printf '{"tokens": {"refresh_token": "rt-' > "$HOME/.codex/auth.json"
: > ${L}/codex-half
read go < ${L}/go-codex
printf '{"tokens":{"refresh_token":"${SECRET}"},"last_refresh":"now"}' > "$HOME/.codex/auth.json"
chmod 600 "$HOME/.codex/auth.json"
exit 0
`,
  );
  // Gemini's shape: a TTY, two prompts answered by keys, xdg-open (not $BROWSER), and it never exits by itself.
  script(
    path.join(bin, 'gemini'),
    `[ -t 0 ] && [ -t 1 ] || { echo "gemini: not a tty" >&2; exit 9; }
echo $$ > ${L}/gemini.pid
printf 'Do you trust this folder?\\n'
read a
printf '\\033[1mSign in with\\033[0m Google\\n'
read b
printf 'Opening authentication page in your browser. Do you want to continue?\\n'
read c
xdg-open '${AUTHORIZE}&via=xdg' > ${L}/xdg-open.out 2>&1 || { echo "xdg-open failed" >&2; exit 6; }
mkdir -p "$HOME/.gemini"
printf '{"access_token":"at"}' > "$HOME/.gemini/oauth_creds.json"
printf '{"security":{"auth":{"selectedType":"oauth-personal"}}}' > "$HOME/.gemini/settings.json"
printf '{"active":"someone@example.test"}' > "$HOME/.gemini/google_accounts.json"
: > ${L}/gemini-half
read go < ${L}/go-gemini
printf '{"access_token":"at","refresh_token":"${SECRET}"}' > "$HOME/.gemini/oauth_creds.json"
exec sleep 600
`,
  );
  script(
    path.join(bin, 'claude'),
    `echo "Opening browser to sign in…" >&2
echo "If it did not open, visit: ${AUTHORIZE}&code_challenge=c2lnbmF0dXJlc2lnbmF0dXJl&state=xyz" >&2
echo "OAuth error: Request failed with status code 403" >&2
echo "while exchanging eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJlc2lnbmF0dXJl" >&2
exit 1
`,
  );
  script(
    path.join(bin, 'firedeck-selftest-login'),
    `env > ${L}/env-selftest
"$BROWSER" 'http://10.0.2.2:4444/auth?client_id=firedeck' || exit 5
mkdir -p "$HOME/.firedeck-selftest"
printf '{"issuer":"http://10.0.2.2:4444","access_token":"at"}' > "$HOME/.firedeck-selftest/credentials.json"
exit 0
`,
  );
  script(path.join(base, 'open-url'), `printf '%s\\n' "$*" >> ${L}/opened\n`);
}

interface Agent {
  port: number;
  child: ChildProcess;
  output: () => string;
  stop: () => Promise<void>;
}

/** The login's PATH: the CLIs (fakes by default), then the image's /usr/local/bin with its xdg-open wrapper. */
async function startAgent(cliDir = path.join(base, 'bin')): Promise<Agent> {
  const loginPath = `${cliDir}:${path.join(base, 'usr/local/bin')}:/usr/bin:/bin`;
  fs.rmSync(path.join(logDir, 'opened'), { force: true });
  let output = '';
  const child = spawn(process.execPath, [AGENT], {
    uid,
    gid,
    cwd: home,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: {
      PATH: '/usr/bin:/bin',
      LANG: 'C.UTF-8',
      FIREDECK_VM: 'vm-oauth-test',
      FIREDECK_ADDRESS: '127.0.0.1',
      FIREDECK_AGENT_PORT: '0',
      FIREDECK_AGENT_TOKEN_FILE: path.join(base, 'agent-token'),
      FIREDECK_AGENT_BROWSER: BROWSER_OPEN,
      FIREDECK_AGENT_OPEN: path.join(base, 'open-url'),
      FIREDECK_AGENT_LOGIN_PATH: loginPath,
      RUNTIME_DIRECTORY: runDir,
      // What the unit's EnvironmentFile= lines give the agent: the proxy and the selftest issuer pass on…
      http_proxy: 'http://proxy.example.test:3128',
      FIREDECK_SELFTEST_ISSUER: 'http://10.0.2.2:4444',
      FIREDECK_SELFTEST_CLIENT_ID: 'firedeck-selftest',
      // …and none of these ever reach a login.
      CI: 'true',
      DEBIAN_FRONTEND: 'noninteractive',
      NO_BROWSER: 'true',
      AGENT_ONLY: 'not for the login',
    },
  });
  child.stdout!.on('data', (c: Buffer) => (output += c.toString()));
  child.stderr!.on('data', (c: Buffer) => (output += c.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const port = await new Promise<number>((resolve, reject) => {
    const onData = (): void => {
      const m = /agent listening on 127\.0\.0\.1:(\d+)/.exec(output);
      if (m) resolve(Number(m[1]));
    };
    child.stdout!.on('data', onData);
    child.once('exit', (code) => reject(new Error(`agent exited ${code}: ${output}`)));
  });
  return {
    port,
    child,
    output: () => output,
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      await exited;
    },
  };
}

interface Reply {
  status: number;
  body: Record<string, unknown>;
  headers: http.IncomingHttpHeaders;
}

function call(
  agent: Agent,
  method: string,
  pathname: string,
  opts: { token?: string | null; body?: string | Buffer; headers?: Record<string, string> } = {},
): Promise<Reply> {
  const token = opts.token === undefined ? TOKEN : opts.token;
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: '127.0.0.1',
        port: agent.port,
        method,
        path: pathname,
        headers: { ...(token === null ? {} : { authorization: `Bearer ${token}` }), ...opts.headers },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          try {
            resolve({
              status: res.statusCode!,
              body: JSON.parse(text) as Record<string, unknown>,
              headers: res.headers,
            });
          } catch {
            reject(new Error(`not JSON (${res.statusCode}): ${text}`));
          }
        });
      },
    );
    req.on('error', reject);
    req.end(opts.body);
  });
}

/** Resolves once check() holds, re-checking on every change in dir (no polling). */
function whenInDir<T>(dir: string, check: () => T | undefined, what: string, ms = 15_000): Promise<T> {
  return new Promise((resolve, reject) => {
    // Watch first, then look: a change between the two is not missed.
    const watcher = fs.watch(dir, () => {
      const v = check();
      if (v !== undefined) done(() => resolve(v));
    });
    const timer = setTimeout(() => done(() => reject(new Error(`timed out waiting for ${what}`))), ms);
    const done = (then: () => void): void => {
      clearTimeout(timer);
      watcher.close();
      then();
    };
    const first = check();
    if (first !== undefined) done(() => resolve(first));
  });
}

function opened(): string[] {
  const file = path.join(logDir, 'opened');
  return fs.existsSync(file) ? fs.readFileSync(file, 'utf8').split('\n').filter(Boolean) : [];
}

function envOf(name: string): Map<string, string> {
  const lines = fs
    .readFileSync(path.join(logDir, `env-${name}`), 'utf8')
    .split('\n')
    .filter(Boolean);
  return new Map(lines.map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
}

/** Running, or gone / a zombie (ended, not yet reaped by whoever inherited it). */
function alive(pid: number): boolean {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}

/**
 * The user's processes once they are gone, or what still runs after `ms`. A process killed with SIGKILL takes a
 * moment to tear its memory down (Gemini's heap: ~100 ms here) and nothing signals its end to a non-parent, so
 * this looks again every 50 ms.
 */
async function processesOfUserAfter(ms: number): Promise<string> {
  const deadline = Date.now() + ms;
  for (;;) {
    const left = processesOfUser();
    if (left === '' || Date.now() > deadline) return left;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** The user's processes that still run (zombies left to their new parent to reap are not). */
function processesOfUser(): string {
  let out = '';
  try {
    out = execFileSync('ps', ['-u', String(uid), '-o', 'stat=,pid=,ppid=,args='], { encoding: 'utf8' });
  } catch (err) {
    // ps exits 1 when the user has no process at all.
    if ((err as { status?: number }).status !== 1) throw err;
  }
  return out
    .split('\n')
    .filter((l) => l.trim() !== '' && !l.trim().startsWith('Z'))
    .join('\n');
}

describe('the oauth agent', () => {
  it('refuses requests without the bearer token or with a wrong one, and answers its health with it', async () => {
    const agent = await startAgent();
    try {
      for (const [method, p] of [
        ['GET', '/health'],
        ['GET', '/credentials/get'],
        ['POST', '/auth/codex'],
        ['GET', '/nowhere'],
      ]) {
        for (const token of [null, '', 'wrong-token-of-the-right-length', `${TOKEN}x`, TOKEN.slice(1)]) {
          const r = await call(agent, method!, p!, { token });
          expect(r.status, `${method} ${p} with ${token === null ? 'no' : 'a wrong'} token`).toBe(401);
          expect(r.body).toEqual({ error: 'unauthorized' });
        }
      }
      const raw = await call(agent, 'GET', '/health', { token: null, headers: { authorization: `Basic ${TOKEN}` } });
      expect(raw.status).toBe(401);
      const health = await call(agent, 'GET', '/health');
      expect(health.status).toBe(200);
      expect(health.body).toEqual({ status: 'ok', vmId: 'vm-oauth-test', startedAt: expect.any(String) });
      // Nothing was started by any of that.
      expect((await call(agent, 'GET', '/credentials/status')).body).toEqual({
        provider: null,
        state: 'idle',
        url: null,
        error: null,
        exitCode: null,
      });
    } finally {
      await agent.stop();
    }
  });

  it('answers bad input with typed JSON errors and keeps serving', async () => {
    const agent = await startAgent();
    try {
      expect(await call(agent, 'GET', '/nowhere')).toMatchObject({ status: 404, body: { error: 'not found' } });
      expect(await call(agent, 'POST', '/auth/netscape')).toMatchObject({
        status: 404,
        body: { error: 'unknown provider' },
      });
      expect(await call(agent, 'GET', '/auth/__proto__/url')).toMatchObject({
        status: 404,
        body: { error: 'unknown provider' },
      });
      expect(await call(agent, 'POST', '/auth/codex/extra')).toMatchObject({ status: 404 });
      const del = await call(agent, 'DELETE', '/health');
      expect(del).toMatchObject({ status: 405, body: { error: 'method not allowed', allow: 'GET' } });
      expect(await call(agent, 'GET', '/auth/codex')).toMatchObject({ status: 405, body: { allow: 'POST' } });
      expect(await call(agent, 'POST', '/auth/codex', { body: '{"half":' })).toMatchObject({
        status: 400,
        body: { error: 'bad json' },
      });
      expect(await call(agent, 'POST', '/auth/codex', { body: '[1,2]' })).toMatchObject({ status: 400 });
      expect(await call(agent, 'GET', '/credentials/status?waitMs=soon')).toMatchObject({
        status: 400,
        body: { error: 'bad waitMs' },
      });
      expect(await call(agent, 'GET', '/credentials/get')).toMatchObject({
        status: 409,
        body: { error: 'not captured' },
      });
      const huge = Buffer.alloc(1024 * 1024, 'a');
      expect(await call(agent, 'POST', '/auth/codex', { body: huge })).toMatchObject({
        status: 413,
        body: { error: 'body too large' },
      });
      // Chunked, so the size is only known while reading.
      const chunked = await call(agent, 'POST', '/auth/codex', {
        body: huge,
        headers: { 'transfer-encoding': 'chunked' },
      });
      expect(chunked).toMatchObject({ status: 413 });
      // Not HTTP at all.
      const garbage = await new Promise<string>((resolve, reject) => {
        const s = net.connect(agent.port, '127.0.0.1', () => s.end('\u0000\u0001 nonsense\r\n\r\n'));
        let text = '';
        s.on('data', (c) => (text += c.toString()));
        s.on('end', () => resolve(text));
        s.on('error', reject);
      });
      expect(garbage).toMatch(/^HTTP\/1\.1 400 /);
      expect(garbage).toContain('{"error":"bad request"}');
      // None of it started a login or hurt the agent.
      expect((await call(agent, 'GET', '/credentials/status')).body).toMatchObject({ state: 'idle' });
      expect((await call(agent, 'GET', '/health')).status).toBe(200);
      expect(agent.child.exitCode).toBeNull();
    } finally {
      await agent.stop();
    }
  });

  it('codex: catches the URL given to $BROWSER, opens it, captures the credential once and deletes it', async () => {
    const agent = await startAgent();
    try {
      // A long poll waiting for any change from idle, answered by the start.
      const firstChange = call(agent, 'GET', '/credentials/status?since=idle&waitMs=20000');
      const started = await call(agent, 'POST', '/auth/codex', { body: '{}' });
      expect(started).toMatchObject({ status: 202, body: { provider: 'codex', state: 'starting' } });
      expect((await firstChange).body.state).not.toBe('idle');

      const url = await call(agent, 'GET', '/auth/codex/url?waitMs=20000');
      expect(url).toMatchObject({ status: 200, body: { provider: 'codex', state: 'awaiting_user', url: AUTHORIZE } });
      await whenInDir(logDir, () => (opened().length > 0 ? true : undefined), 'the opener');
      expect(opened()).toEqual([`${AUTHORIZE}`]);

      // The login ran with the table's argv and a clean environment.
      expect(fs.readFileSync(path.join(logDir, 'argv-codex'), 'utf8').trim().split('\n')).toEqual([
        '-c',
        'cli_auth_credentials_store="file"',
        'login',
      ]);
      const env = envOf('codex');
      expect(env.get('HOME')).toBe(home);
      expect(env.get('USER')).toBe(USER);
      expect(env.get('DISPLAY')).toBe(':0');
      expect(env.get('LANG')).toBe('C.UTF-8');
      expect(env.get('BROWSER')).toBe(BROWSER_OPEN);
      expect(env.get('http_proxy')).toBe('http://proxy.example.test:3128');
      for (const never of ['CI', 'DEBIAN_FRONTEND', 'NO_BROWSER', 'AGENT_ONLY', 'FIREDECK_SELFTEST_ISSUER']) {
        expect(env.has(never), never).toBe(false);
      }
      const socketDir = path.dirname(env.get('FIREDECK_URL_SOCKET')!);
      expect(path.dirname(socketDir)).toBe(runDir);
      expect(fs.statSync(socketDir).mode & 0o777).toBe(0o700);

      // One login per VM life.
      expect(await call(agent, 'POST', '/auth/claude_code')).toMatchObject({
        status: 409,
        body: { error: 'busy', provider: 'codex' },
      });
      expect(await call(agent, 'GET', '/credentials/get')).toMatchObject({ status: 409 });
      // Another provider's URL is not this login's.
      expect((await call(agent, 'GET', '/auth/gemini_cli/url?waitMs=5000')).body).toEqual({
        provider: 'gemini_cli',
        state: 'idle',
        url: null,
      });

      // The half-written file is on disk; the long poll returns when the login has finished and been captured.
      await whenInDir(logDir, () => (fs.existsSync(path.join(logDir, 'codex-half')) ? true : undefined), 'half');
      expect(fs.existsSync(path.join(home, '.codex/auth.json'))).toBe(true);
      expect((await call(agent, 'GET', '/credentials/status')).body.state).toBe('awaiting_user');
      const t0 = Date.now();
      const change = call(agent, 'GET', '/credentials/status?since=awaiting_user&waitMs=30000');
      await fs.promises.writeFile(path.join(logDir, 'go-codex'), 'go\n');
      const status = await change;
      expect(Date.now() - t0).toBeLessThan(15_000);
      expect(status.body).toEqual({
        provider: 'codex',
        state: 'captured',
        url: AUTHORIZE,
        error: null,
        exitCode: 0,
      });
      expect(fs.existsSync(path.join(home, '.codex/auth.json'))).toBe(false);
      expect(fs.readdirSync(runDir)).toEqual([]);
      expect(await call(agent, 'POST', '/auth/codex')).toMatchObject({
        status: 409,
        body: { error: 'already captured' },
      });

      const got = await call(agent, 'GET', '/credentials/get');
      expect(got.status).toBe(200);
      expect(got.body).toMatchObject({ provider: 'codex', capturedAt: expect.any(String) });
      const files = got.body.files as { path: string; contentBase64: string; mode: number }[];
      expect(files.map((f) => [f.path, f.mode])).toEqual([['.codex/auth.json', 0o600]]);
      expect(JSON.parse(Buffer.from(files[0]!.contentBase64, 'base64').toString())).toEqual({
        tokens: { refresh_token: SECRET },
        last_refresh: 'now',
      });
      expect(await call(agent, 'GET', '/credentials/get')).toMatchObject({
        status: 410,
        body: { error: 'already delivered' },
      });
      expect((await call(agent, 'GET', '/credentials/status')).body.state).toBe('delivered');
      expect(await call(agent, 'POST', '/auth/codex')).toMatchObject({ status: 409 });
      expect(agent.output()).not.toContain(SECRET);
      expect(agent.output()).not.toContain('rt-');
    } finally {
      await agent.stop();
    }
  });

  it('gemini: answers the TTY prompts, catches the URL through xdg-open, captures while the login runs', async () => {
    const agent = await startAgent();
    try {
      expect((await call(agent, 'POST', '/auth/gemini_cli')).status).toBe(202);
      const url = await call(agent, 'GET', '/auth/gemini_cli/url?waitMs=20000');
      expect(url.body).toEqual({ provider: 'gemini_cli', state: 'awaiting_user', url: `${AUTHORIZE}&via=xdg` });
      await whenInDir(logDir, () => (opened().length > 0 ? true : undefined), 'the opener');
      expect(opened()).toEqual([`${AUTHORIZE}&via=xdg`]);
      // The companions exist but the credential lacks refresh_token: not captured (checked after the agent
      // has seen every write: the files exist before the login blocks on its gate).
      await whenInDir(logDir, () => (fs.existsSync(path.join(logDir, 'gemini-half')) ? true : undefined), 'the files');
      const still = await call(agent, 'GET', '/credentials/status?since=awaiting_user&waitMs=1000');
      expect(still.body.state).toBe('awaiting_user');

      const pid = Number(fs.readFileSync(path.join(logDir, 'gemini.pid'), 'utf8'));
      expect(alive(pid)).toBe(true);
      const change = call(agent, 'GET', '/credentials/status?since=awaiting_user&waitMs=30000');
      await fs.promises.writeFile(path.join(logDir, 'go-gemini'), 'go\n');
      expect((await change).body).toMatchObject({
        provider: 'gemini_cli',
        state: 'captured',
        error: null,
        exitCode: null,
      });
      // The login (which never exits by itself) is gone, and so are its files.
      expect(alive(pid)).toBe(false);
      for (const f of ['oauth_creds.json', 'settings.json', 'google_accounts.json']) {
        expect(fs.existsSync(path.join(home, '.gemini', f)), f).toBe(false);
      }
      const got = await call(agent, 'GET', '/credentials/get');
      const files = got.body.files as { path: string; contentBase64: string }[];
      expect(files.map((f) => f.path)).toEqual([
        '.gemini/oauth_creds.json',
        '.gemini/settings.json',
        '.gemini/google_accounts.json',
      ]);
      expect(JSON.parse(Buffer.from(files[0]!.contentBase64, 'base64').toString()).refresh_token).toBe(SECRET);
      expect(agent.output()).not.toContain(SECRET);
    } finally {
      await agent.stop();
    }
  });

  it('claude_code: a login that exits non-zero is failed with the CLI’s own words, no token in them', async () => {
    const agent = await startAgent();
    try {
      expect((await call(agent, 'POST', '/auth/claude_code')).status).toBe(202);
      const status = (await call(agent, 'GET', '/credentials/status?since=starting&waitMs=20000')).body;
      expect(status).toMatchObject({ provider: 'claude_code', state: 'failed', exitCode: 1, url: null });
      expect(status.error).toMatch(/^login exited with code 1: /);
      expect(status.error).toContain('OAuth error: Request failed with status code 403');
      expect(status.error).not.toContain('eyJ');
      expect(String(status.error).length).toBeLessThan(2200);
      // The CLI's last lines, an authorize URL printed among them cut to its address (no state, no challenge).
      expect(status.error).not.toContain('Opening browser');
      expect(status.error).toContain(`visit: ${AUTHORIZE.split('?')[0]}?…`);
      expect(status.error).not.toContain('state=');
      expect((await call(agent, 'GET', '/auth/claude_code/url?waitMs=20000')).body).toEqual({
        provider: 'claude_code',
        state: 'failed',
        url: null,
      });
      expect(await call(agent, 'GET', '/credentials/get')).toMatchObject({ status: 409 });
    } finally {
      await agent.stop();
    }
  });

  it('selftest: gets the issuer from the agent’s environment; exit 0 without a whole credential is failed', async () => {
    const agent = await startAgent();
    try {
      expect((await call(agent, 'POST', '/auth/selftest')).status).toBe(202);
      const url = await call(agent, 'GET', '/auth/selftest/url?waitMs=20000');
      expect(url.body.url).toBe('http://10.0.2.2:4444/auth?client_id=firedeck');
      const status = await call(agent, 'GET', '/credentials/status?since=awaiting_user&waitMs=20000');
      expect(status.body).toMatchObject({ provider: 'selftest', state: 'failed', exitCode: 0 });
      expect(status.body.error).toBe(
        'login exited 0 but ~/.firedeck-selftest/credentials.json is missing or lacks issuer, access_token, refresh_token, id_token, obtained_at',
      );
      const env = envOf('selftest');
      expect(env.get('FIREDECK_SELFTEST_ISSUER')).toBe('http://10.0.2.2:4444');
      expect(env.get('FIREDECK_SELFTEST_CLIENT_ID')).toBe('firedeck-selftest');
      // A failed login may be retried in the same VM (nothing was captured).
      expect((await call(agent, 'POST', '/auth/selftest')).status).toBe(202);
    } finally {
      await agent.stop();
    }
  });

  it('a login that cannot start is failed with why', async () => {
    const nothing = path.join(base, 'no-clis');
    fs.mkdirSync(nothing, { recursive: true });
    const agent = await startAgent(nothing);
    try {
      expect((await call(agent, 'POST', '/auth/codex')).status).toBe(202);
      const status = await call(agent, 'GET', '/credentials/status?since=starting&waitMs=20000');
      expect(status.body).toEqual({
        provider: 'codex',
        state: 'failed',
        url: null,
        error: 'cannot start codex: ENOENT',
        exitCode: null,
      });
      // A TTY login starts through script, whose shell says it.
      expect((await call(agent, 'POST', '/auth/gemini_cli')).status).toBe(202);
      const tty = await call(agent, 'GET', '/credentials/status?since=starting&waitMs=20000');
      expect(tty.body).toMatchObject({ provider: 'gemini_cli', state: 'failed', exitCode: 127 });
      expect(tty.body.error).toMatch(/^login exited with code 127: .*gemini.*not found/s);
      expect(fs.readdirSync(runDir)).toEqual([]);
    } finally {
      await agent.stop();
    }
  });

  it('the BROWSER script refuses without a login to report to, and the xdg-open wrapper passes through', () => {
    const run = (file: string, env: Record<string, string>): { status: number | null; stderr: string } => {
      try {
        execFileSync(file, ['https://example.test/'], { env, stdio: ['ignore', 'ignore', 'pipe'], uid, gid });
        return { status: 0, stderr: '' };
      } catch (err) {
        const e = err as { status: number | null; stderr: Buffer };
        return { status: e.status, stderr: e.stderr.toString() };
      }
    };
    const PATH = '/usr/bin:/bin';
    expect(run(BROWSER_OPEN, { PATH })).toMatchObject({ status: 3 });
    const gone = run(BROWSER_OPEN, { PATH, FIREDECK_URL_SOCKET: path.join(base, 'no.sock') });
    expect(gone.status).toBe(1);
    expect(gone.stderr).toContain('cannot reach the oauth agent');
    expect(gone.stderr).not.toContain('example.test');
    // Outside a login, the wrapper looks for another xdg-open after itself on PATH.
    const alone = run(XDG_OPEN, { PATH: `${path.dirname(XDG_OPEN)}:${base}` });
    expect(alone).toMatchObject({ status: 3 });
  });
});

/** The CLI's pinned spec in the browser recipe's npmGlobals, e.g. `@openai/codex@0.171.0`. */
function pinned(pkg: string): string {
  const recipe = JSON.parse(fs.readFileSync(path.join(FILES, '..', 'recipe.json'), 'utf8')) as { npmGlobals: string[] };
  const spec = recipe.npmGlobals.find((g) => g.startsWith(`${pkg}@`));
  if (!spec) throw new Error(`${pkg} is not in the browser recipe's npmGlobals`);
  return spec;
}

/** Installs a CLI as the test's user into a prefix of its own (never as root); the bin dir, or null if it failed. */
function installAsUser(name: string, spec: string): string | null {
  const prefix = path.join(base, name);
  fs.mkdirSync(prefix);
  fs.chownSync(prefix, uid, gid);
  const registry = execFileSync('npm', ['config', 'get', 'registry'], { encoding: 'utf8' }).trim();
  const started = Date.now();
  let ok = false;
  try {
    execFileSync('npm', ['install', '--prefix', prefix, '--no-audit', '--no-fund', spec], {
      uid,
      gid,
      cwd: prefix,
      stdio: ['ignore', 'ignore', 'pipe'],
      timeout: 300_000,
      env: {
        PATH: '/usr/bin:/bin',
        HOME: home,
        npm_config_registry: registry,
        npm_config_cache: path.join(prefix, '.npm-cache'),
        npm_config_update_notifier: 'false',
        ...(process.env.NODE_EXTRA_CA_CERTS ? { NODE_EXTRA_CA_CERTS: process.env.NODE_EXTRA_CA_CERTS } : {}),
        npm_config_cafile: '/etc/ssl/certs/ca-certificates.crt',
      },
    });
    ok = true;
  } catch (err) {
    console.log(String((err as { stderr?: Buffer }).stderr ?? err).slice(-2000));
  } finally {
    console.log(`${spec} install as ${USER}: ${ok ? 'ok' : 'failed'}, ${Date.now() - started} ms`);
  }
  return ok ? path.join(prefix, 'node_modules', '.bin') : null;
}

describe.each([
  {
    provider: 'codex',
    pkg: '@openai/codex',
    // Codex's callback server: 127.0.0.1:1455, or 1457 when that is taken.
    authorize: 'https://auth.openai.com/',
    redirect: /^http:\/\/(127\.0\.0\.1|localhost):145[57]\//,
  },
  {
    provider: 'claude_code',
    pkg: '@anthropic-ai/claude-code',
    // The URL Claude opens (not the short link it prints) names its callback on a random port.
    authorize: 'https://claude.',
    redirect: /^http:\/\/localhost:\d+\/callback$/,
  },
  {
    provider: 'gemini_cli',
    pkg: '@google/gemini-cli',
    // Interactive on a pty: the table's keys get it through its dialogs to xdg-open (it ignores $BROWSER).
    authorize: 'https://accounts.google.com/',
    redirect: /^http:\/\/127\.0\.0\.1:\d+\/oauth2callback$/,
  },
])('the oauth agent with the real $provider', ({ provider, pkg, authorize, redirect }) => {
  let bin: string | null = null;

  beforeAll(() => {
    bin = installAsUser(provider, pinned(pkg));
  }, 320_000);

  it('passes its authorize URL to $BROWSER and the agent reports it; stopping the agent ends the login', async () => {
    expect(bin, `${pkg} installed`).not.toBeNull();
    const agent = await startAgent(bin!);
    try {
      expect((await call(agent, 'POST', `/auth/${provider}`)).status).toBe(202);
      const url = await call(agent, 'GET', `/auth/${provider}/url?waitMs=60000`);
      expect(url.body, agent.output()).toMatchObject({ provider, state: 'awaiting_user' });
      const opened_ = String(url.body.url);
      expect(opened_.startsWith(authorize)).toBe(true);
      expect(new URL(opened_).searchParams.get('redirect_uri')).toMatch(redirect);
      await whenInDir(logDir, () => (opened().length > 0 ? true : undefined), 'the opener');
      expect(opened()).toEqual([`${opened_}`]);
    } finally {
      await agent.stop();
    }
    expect(await processesOfUserAfter(5000)).toBe('');
  });
});
