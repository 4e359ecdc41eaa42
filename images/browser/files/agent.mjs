// Firedeck oauth agent (browser VM), ARCHITECTURE.md "Credentials". Serves the daemon, the bearer of the
// session's token from the config drive, on the VM's private address only:
//   GET  /health                          → {status, vmId, startedAt}
//   POST /auth/:provider                  → 202 {provider, state: "starting"}; one login per VM life
//   GET  /auth/:provider/url?waitMs=N     → {provider, state, url}; long-polls until the URL is known
//   GET  /credentials/status?waitMs&since → {provider, state, url, error, exitCode}; long-polls until state≠since
//   GET  /credentials/get                 → the captured files once, then 410
// It runs the provider's login as its own user (the desktop user) with a clean environment, learns the
// authorize URL from the BROWSER script / xdg-open wrapper over a unix socket, opens it in the running Firefox,
// watches the credential file, and on capture kills the login and deletes the files from this VM's disk: a
// copy is a move (Codex and Claude rotate single-use refresh tokens), so this VM never runs a CLI again.
// No credential value is ever logged or put into an error; files are judged by their top-level field names.
// The FIREDECK_AGENT_* variables exist for the host-side tests only; the defaults are the guest's paths.
import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import { EventEmitter } from 'node:events';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { PROVIDERS } from './providers.mjs';

const env = process.env;
const PORT = Number(env.FIREDECK_AGENT_PORT || 8390);
const ADDRESS = env.FIREDECK_ADDRESS || '127.0.0.1';
const VM_ID = env.FIREDECK_VM || '';
const TOKEN_FILE = env.FIREDECK_AGENT_TOKEN_FILE || '/run/firedeck/agent-token';
const BROWSER_SCRIPT = env.FIREDECK_AGENT_BROWSER || '/usr/local/lib/firedeck/browser-open';
// The command that shows a URL in the desktop's Firefox: `<cmd> URL`.
const OPEN_COMMAND = env.FIREDECK_AGENT_OPEN || '/usr/local/lib/firedeck/firefox-show';
// /usr/local/bin first: its xdg-open is the wrapper that reports the URL (Gemini ignores $BROWSER).
const LOGIN_PATH = env.FIREDECK_AGENT_LOGIN_PATH || '/usr/local/bin:/usr/bin:/bin';
// systemd's RuntimeDirectory= (0700, the agent's user); PrivateTmp otherwise.
const RUNTIME_DIR = env.RUNTIME_DIRECTORY || os.tmpdir();

const MAX_BODY = 16 * 1024;
const MAX_WAIT_MS = 60_000;
const MAX_URL = 8 * 1024;
const MAX_CREDENTIAL_FILE = 1024 * 1024;
const ERROR_CAP = 2048;
const OUTPUT_TAIL = 16 * 1024;
const KILL_GRACE_MS = 3000;
const OUTPUT_DRAIN_MS = 500;
const PROXY_VARS = ['http_proxy', 'HTTP_PROXY', 'https_proxy', 'HTTPS_PROXY', 'no_proxy', 'NO_PROXY'];
const NEVER_PASSED = new Set(['CI', 'DEBIAN_FRONTEND', 'NO_BROWSER']);
const TERMINAL = new Set(['captured', 'delivered', 'failed']);

const me = os.userInfo();
const HOME = me.homedir;

const token = readToken();
const expected = crypto.createHash('sha256').update(token).digest();
const startedAt = new Date().toISOString();

function readToken() {
  let text = '';
  try {
    text = fs.readFileSync(TOKEN_FILE, 'utf8').trim();
  } catch (err) {
    console.error(`agent token not readable at ${TOKEN_FILE}: ${err.code ?? err.message}`);
    process.exit(1);
  }
  if (text.length < 16) {
    console.error('agent token missing or too short');
    process.exit(1);
  }
  return text;
}

// ---- the one login of this VM's life --------------------------------------------------------------------

const changes = new EventEmitter();
changes.setMaxListeners(0);

/** @type {{provider: string|null, state: string, url: string|null, error: string|null, exitCode: number|null}} */
const status = { provider: null, state: 'idle', url: null, error: null, exitCode: null };
/** @type {null | {child: import('node:child_process').ChildProcess, spec: object, runDir: string, socket: net.Server, watchers: Map<string, fs.FSWatcher>, exited: boolean, exitCode: number|null, capturing: boolean, closed: boolean, ttyPid: number|undefined, output: string, keyIndex: number, keyScan: string}} */
let login = null;
/** @type {null | {provider: string, capturedAt: string, files: {path: string, content: Buffer, mode: number}[]}} */
let captured = null;

function setStatus(patch) {
  const before = status.state;
  Object.assign(status, patch);
  if (status.state !== before) console.log(`login ${status.provider}: ${before} → ${status.state}`);
  changes.emit('change');
}

function cleanEnv(provider, spec, runDir) {
  const out = {
    HOME,
    USER: me.username,
    LOGNAME: me.username,
    PATH: LOGIN_PATH,
    LANG: env.LANG || 'C.UTF-8',
    DISPLAY: ':0',
    BROWSER: BROWSER_SCRIPT,
    FIREDECK_URL_SOCKET: path.join(runDir, 'url.sock'),
  };
  // The unit reads /run/firedeck/proxy.env into the agent's environment; the login gets the same proxy.
  for (const name of PROXY_VARS) if (env[name]) out[name] = env[name];
  if (spec.login.tty) out.TERM = 'xterm-256color';
  Object.assign(out, spec.login.env);
  if (provider === 'selftest') {
    for (const name of ['FIREDECK_SELFTEST_ISSUER', 'FIREDECK_SELFTEST_CLIENT_ID']) if (env[name]) out[name] = env[name];
  }
  // Any of these makes Gemini (and others) fall back to a paste-the-code flow; they never reach a login.
  return Object.fromEntries(Object.entries(out).filter(([name]) => !NEVER_PASSED.has(name)));
}

function shellQuote(word) {
  return `'${word.replaceAll("'", `'\\''`)}'`;
}

function startLogin(provider) {
  const spec = PROVIDERS[provider];
  const runDir = fs.mkdtempSync(path.join(RUNTIME_DIR, 'firedeck-login-'));
  fs.chmodSync(runDir, 0o700);
  const loginEnv = cleanEnv(provider, spec, runDir);
  const socket = net.createServer((conn) => receiveUrl(conn));
  socket.on('error', (err) => console.error(`url socket: ${err.code ?? err.message}`));
  socket.listen(loginEnv.FIREDECK_URL_SOCKET);

  let file = spec.login.argv[0];
  let args = spec.login.argv.slice(1);
  if (spec.login.tty) {
    // A pty through util-linux script: -e passes the login's exit code on, -f flushes every write. A pty
    // without a terminal behind it has no size; give it one so full-screen UIs lay out (and URLs wrap less).
    // script puts the login into a session (and process group) of its own on the pty: its pid, written here,
    // names that group for killGroup.
    const pidFile = shellQuote(path.join(runDir, 'tty-login.pid'));
    const command = `stty cols 200 rows 50 2>/dev/null; echo $$ > ${pidFile}; exec ${spec.login.argv.map(shellQuote).join(' ')}`;
    file = 'script';
    args = ['-q', '-f', '-e', '-c', command, '/dev/null'];
  }
  const child = spawn(file, args, {
    cwd: HOME,
    env: loginEnv,
    detached: true, // its own process group, killed whole on capture
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  login = {
    child,
    spec,
    runDir,
    socket,
    watchers: new Map(),
    exited: false,
    exitCode: null,
    capturing: false,
    closed: false,
    ttyPid: undefined,
    output: '',
    keyIndex: 0,
    keyScan: '',
  };
  setStatus({ provider, state: 'starting', url: null, error: null, exitCode: null });

  const current = login;
  child.stdin.on('error', () => {});
  child.stdout.on('data', (chunk) => onOutput(current, chunk));
  child.stderr.on('data', (chunk) => onOutput(current, chunk));
  child.on('error', (err) => {
    if (current.exited) return;
    current.exited = true;
    fail(current, `cannot start ${spec.login.argv[0]}: ${err.code ?? err.message}`, null);
  });
  child.on('exit', (code, signal) => {
    if (current.exited) return;
    current.exited = true;
    current.exitCode = code;
    if (current.capturing) return;
    if (code === 0) {
      check(current);
      if (!current.capturing) fail(current, `login exited 0 but ${describeCredential(spec)}`, 0);
      return;
    }
    // Its last words may still be in the pipes: wait for them to close (briefly: a leftover child of the login
    // may hold them open).
    const report = () => {
      clearTimeout(cap);
      const words = lastWords(current.output);
      const why = code === null ? `login ended by signal ${signal}` : `login exited with code ${code}`;
      fail(current, words ? `${why}: ${words}` : why, code);
    };
    const cap = setTimeout(report, OUTPUT_DRAIN_MS);
    child.once('close', report);
  });
  watchFiles(current);
  check(current);
}

// ---- output: the CLI's own error words, and the keys of a TTY login ------------------------------------

// eslint-disable-next-line no-control-regex
const ANSI = /\u001b\[[0-?]*[ -/]*[@-~]|\u001b\][^\u0007\u001b]*(\u0007|\u001b\\)|\u001b[@-Z\\-_]|[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f]/g;

function onOutput(current, chunk) {
  const text = chunk.toString('utf8').replace(ANSI, '');
  current.output = (current.output + text).slice(-OUTPUT_TAIL);
  const keys = current.spec.login.keys;
  if (current.keyIndex >= keys.length || current.capturing || current.exited) return;
  current.keyScan = (current.keyScan + text).slice(-OUTPUT_TAIL);
  // In order; a prompt that never comes (a folder trusted already) is skipped once a later one shows.
  for (;;) {
    let next = -1;
    for (let i = current.keyIndex; i < keys.length && next < 0; i++) {
      if (current.keyScan.includes(keys[i].waitFor)) next = i;
    }
    if (next < 0) return;
    const key = keys[next];
    current.keyScan = current.keyScan.slice(current.keyScan.indexOf(key.waitFor) + key.waitFor.length);
    current.keyIndex = next + 1;
    current.child.stdin.write(key.send);
  }
}

// Long opaque runs (JWTs, tokens) are never part of an error: a CLI that echoes what it received cannot leak it.
const SECRETISH = /eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_.-]+|[A-Za-z0-9_-]{40,}/g;

// A URL's query (the authorize URL a CLI prints, with its state and challenge) says nothing about an error.
const URL_QUERY = /(https?:\/\/[^\s?#]+)\?[^\s]*/g;
/** An error is the CLI's last few lines: enough for its words, never its whole transcript. */
const ERROR_LINES = 3;

function lastWords(output) {
  const lines = output
    .replace(/\r\n?/g, '\n')
    .split('\n')
    .map((l) => l.trim().replace(URL_QUERY, '$1?…'))
    .filter((l) => l !== '')
    .slice(-ERROR_LINES);
  let words = '';
  for (let i = lines.length - 1; i >= 0; i--) {
    const next = words ? `${lines[i]}\n${words}` : lines[i];
    if (next.length > ERROR_CAP) break;
    words = next;
  }
  if (!words && lines.length > 0) words = lines[lines.length - 1].slice(-ERROR_CAP);
  return words.replace(SECRETISH, '[redacted]');
}

function fail(current, error, exitCode) {
  if (login !== current || TERMINAL.has(status.state)) return;
  killGroup(current);
  closeLogin(current);
  setStatus({ state: 'failed', error, exitCode });
}

// ---- URL capture: the BROWSER script and the xdg-open wrapper connect to the login's socket -------------

function receiveUrl(conn) {
  let data = '';
  conn.setEncoding('utf8');
  conn.setTimeout(5000, () => conn.destroy());
  conn.on('error', () => {});
  conn.on('data', (chunk) => {
    data += chunk;
    if (data.length > MAX_URL + 2) {
      conn.end('error: url too long\n');
      return;
    }
    const nl = data.indexOf('\n');
    if (nl < 0) return;
    const reply = acceptUrl(data.slice(0, nl).trim());
    conn.end(`${reply}\n`);
  });
}

function acceptUrl(text) {
  let url;
  try {
    url = new URL(text);
  } catch {
    return 'error: not a URL';
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') return 'error: not an http(s) URL';
  if (!login || login.capturing || TERMINAL.has(status.state)) return 'error: no login is waiting for a URL';
  openInFirefox(url.href);
  // First URL wins: it is the authorize URL the daemon shows; later ones are only opened.
  if (status.url === null) setStatus({ url: url.href, state: 'awaiting_user' });
  return 'ok';
}

/**
 * Shows the URL in the desktop's Firefox: `<FIREDECK_AGENT_OPEN> URL` (in the image, firefox-show, which
 * restarts Firefox on that URL; see its header for why not `--new-tab`).
 */
function openInFirefox(url) {
  const opener = spawn(OPEN_COMMAND, [url], {
    cwd: HOME,
    env: { HOME, USER: me.username, PATH: LOGIN_PATH, LANG: env.LANG || 'C.UTF-8', FIREDECK_FIREFOX_URL_DIR: RUNTIME_DIR },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  opener.stderr.on('data', (d) => (stderr = (stderr + d.toString()).slice(-2000)));
  opener.on('error', (err) => console.error(`cannot open the URL in Firefox: ${err.code ?? err.message}`));
  opener.on('exit', (code) => {
    if (code !== 0) console.error(`${path.basename(OPEN_COMMAND)} exited with code ${code}: ${stderr.trim()}`);
  });
}

// ---- credential capture ---------------------------------------------------------------------------------

function filesOf(spec) {
  return [spec.credential, ...spec.companions];
}

function describeCredential(spec) {
  return `~/${spec.credential.path} is missing or lacks ${spec.credential.requiredFields.join(', ')}`;
}

/** Watches each file's directory, or its nearest existing ancestor until the directory appears. */
function watchFiles(current) {
  const wanted = new Set();
  for (const f of filesOf(current.spec)) {
    let dir = path.dirname(path.join(HOME, f.path));
    while (!fs.existsSync(dir) && dir.startsWith(HOME) && dir !== HOME) dir = path.dirname(dir);
    wanted.add(dir);
  }
  for (const dir of wanted) {
    if (current.watchers.has(dir)) continue;
    try {
      const watcher = fs.watch(dir, { persistent: false }, () => {
        watchFiles(current);
        check(current);
      });
      watcher.on('error', () => {});
      current.watchers.set(dir, watcher);
    } catch (err) {
      console.error(`cannot watch ${dir}: ${err.code ?? err.message}`);
    }
  }
}

/** The JSON object in a file of the home, or null (missing, partial, not JSON). Values are never looked at. */
function readJsonFile(rel) {
  const full = path.join(HOME, rel);
  let content;
  try {
    const st = fs.lstatSync(full);
    if (!st.isFile() || st.size > MAX_CREDENTIAL_FILE) return null;
    content = fs.readFileSync(full);
    let parsed;
    try {
      parsed = JSON.parse(content.toString('utf8'));
    } catch {
      content.fill(0);
      return null;
    }
    if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
      content.fill(0);
      return null;
    }
    return { content, mode: st.mode & 0o777, fields: Object.keys(parsed) };
  } catch {
    return null;
  }
}

function check(current) {
  if (login !== current || current.capturing || TERMINAL.has(status.state)) return;
  const spec = current.spec;
  const credential = readJsonFile(spec.credential.path);
  if (!credential) return;
  const complete = spec.credential.requiredFields.every((f) => credential.fields.includes(f));
  // The login has finished writing when it exits 0; an interactive (TTY) login keeps running, and its
  // companion files, written after the credential, say it is done.
  let done = current.exited && current.exitCode === 0;
  const companions = spec.companions.map((c) => readJsonFile(c.path));
  if (!done && spec.login.tty && companions.length > 0) {
    done = companions.every((c, i) => c && spec.companions[i].requiredFields.every((f) => c.fields.includes(f)));
  }
  if (!complete || !done) {
    credential.content.fill(0);
    for (const c of companions) c?.content.fill(0);
    return;
  }
  const files = [{ path: spec.credential.path, content: credential.content, mode: credential.mode }];
  spec.companions.forEach((c, i) => {
    if (companions[i]) files.push({ path: c.path, content: companions[i].content, mode: companions[i].mode });
  });
  capture(current, files);
}

function capture(current, files) {
  current.capturing = true;
  captured = { provider: status.provider, capturedAt: new Date().toISOString(), files };
  // The login's own exit code, or null when it still ran (an interactive login) and was ended here.
  const exitCode = current.exited ? current.exitCode : null;
  const finish = () => {
    // After the login is gone, so it cannot write the files again.
    for (const f of filesOf(current.spec)) {
      try {
        fs.rmSync(path.join(HOME, f.path), { force: true });
      } catch (err) {
        console.error(`cannot delete ~/${f.path}: ${err.code ?? err.message}`);
      }
    }
    closeLogin(current);
    setStatus({ state: 'captured', exitCode, error: null });
  };
  if (current.exited) {
    killGroup(current);
    finish();
  } else {
    current.child.once('exit', finish);
    killGroup(current);
  }
}

/**
 * Ends the login's process group (and what it spawned into it): SIGTERM, then SIGKILL after a grace whether or
 * not the leader has gone (a child may outlive it). A TTY login has a session and group of its own under
 * script; that group gets SIGKILL at once: Gemini shrugs off SIGTERM and SIGHUP (seen with 0.61), and script,
 * signalled itself, lingers 2 s, while it exits as soon as the login is gone.
 */
function killGroup(current) {
  if (current.child.pid === undefined) return;
  const signal = (pid, sig) => {
    try {
      process.kill(-pid, sig);
    } catch {
      // the group is gone already
    }
  };
  if (current.spec.login.tty) {
    if (current.ttyPid === undefined) {
      try {
        const pid = Number(fs.readFileSync(path.join(current.runDir, 'tty-login.pid'), 'utf8'));
        if (Number.isInteger(pid) && pid > 1) current.ttyPid = pid;
      } catch {
        // not started yet: script's group is all there is
      }
    }
    if (current.ttyPid !== undefined) return signal(current.ttyPid, 'SIGKILL');
  }
  signal(current.child.pid, 'SIGTERM');
  const hard = setTimeout(() => signal(current.child.pid, 'SIGKILL'), KILL_GRACE_MS);
  hard.unref();
}

function closeLogin(current) {
  if (current.closed) return;
  current.closed = true;
  for (const w of current.watchers.values()) w.close();
  current.watchers.clear();
  current.socket.close();
  fs.rmSync(current.runDir, { recursive: true, force: true });
}

function takeCredential() {
  const body = {
    provider: captured.provider,
    capturedAt: captured.capturedAt,
    files: captured.files.map((f) => ({ path: f.path, contentBase64: f.content.toString('base64'), mode: f.mode })),
  };
  for (const f of captured.files) f.content.fill(0);
  captured = null;
  return body;
}

// ---- HTTP --------------------------------------------------------------------------------------------------

class HttpError extends Error {
  constructor(status, body) {
    super(body.error);
    this.status = status;
    this.body = body;
  }
}

function authorized(req) {
  const m = /^Bearer (\S+)$/.exec(req.headers.authorization ?? '');
  if (!m) return false;
  const given = crypto.createHash('sha256').update(m[1]).digest();
  return crypto.timingSafeEqual(given, expected);
}

function send(res, statusCode, body, headers = {}) {
  if (res.headersSent || res.destroyed) return;
  const text = JSON.stringify(body);
  res.writeHead(statusCode, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(text),
    'cache-control': 'no-store',
    ...headers,
  });
  res.end(text);
}

function readBody(req) {
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers['content-length'] ?? 0);
    if (declared > MAX_BODY) {
      reject(new HttpError(413, { error: 'body too large', limit: MAX_BODY }));
      return;
    }
    const chunks = [];
    let size = 0;
    req.on('data', (chunk) => {
      size += chunk.length;
      if (size > MAX_BODY) {
        req.removeAllListeners('data');
        req.resume();
        reject(new HttpError(413, { error: 'body too large', limit: MAX_BODY }));
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function parseJsonBody(text) {
  if (text.trim() === '') return {};
  let body;
  try {
    body = JSON.parse(text);
  } catch {
    throw new HttpError(400, { error: 'bad json' });
  }
  if (body === null || typeof body !== 'object' || Array.isArray(body)) {
    throw new HttpError(400, { error: 'body must be a JSON object' });
  }
  return body;
}

function waitMsOf(url) {
  const raw = url.searchParams.get('waitMs');
  if (raw === null || raw === '') return 0;
  if (!/^\d{1,9}$/.test(raw)) throw new HttpError(400, { error: 'bad waitMs', hint: 'a whole number of ms' });
  return Math.min(Number(raw), MAX_WAIT_MS);
}

/** Resolves when done() holds, after waitMs, or when the client goes away. */
function waitFor(req, waitMs, done) {
  if (done() || waitMs === 0) return Promise.resolve();
  return new Promise((resolve) => {
    const finish = () => {
      clearTimeout(timer);
      changes.off('change', onChange);
      req.socket.off('close', finish);
      resolve();
    };
    const onChange = () => {
      if (done()) finish();
    };
    const timer = setTimeout(finish, waitMs);
    changes.on('change', onChange);
    req.socket.on('close', finish);
  });
}

function knownProvider(name) {
  if (!Object.hasOwn(PROVIDERS, name)) throw new HttpError(404, { error: 'unknown provider' });
  return name;
}

function onlyMethod(req, method) {
  if (req.method !== method) throw new HttpError(405, { error: 'method not allowed', allow: method });
}

async function route(req, res) {
  const url = new URL(req.url ?? '/', 'http://agent');
  const parts = url.pathname.split('/').slice(1);

  if (url.pathname === '/health') {
    onlyMethod(req, 'GET');
    return send(res, 200, { status: 'ok', vmId: VM_ID, startedAt });
  }

  if (parts[0] === 'auth' && parts.length === 2) {
    onlyMethod(req, 'POST');
    const provider = knownProvider(parts[1]);
    parseJsonBody(await readBody(req));
    if (captured || status.state === 'captured' || status.state === 'delivered') {
      throw new HttpError(409, { error: 'already captured', provider: status.provider, state: status.state });
    }
    if (status.state === 'starting' || status.state === 'awaiting_user') {
      throw new HttpError(409, { error: 'busy', provider: status.provider, state: status.state });
    }
    startLogin(provider);
    return send(res, 202, { provider, state: 'starting' });
  }

  if (parts[0] === 'auth' && parts.length === 3 && parts[2] === 'url') {
    onlyMethod(req, 'GET');
    const provider = knownProvider(parts[1]);
    const waitMs = waitMsOf(url);
    const mine = () => status.provider === provider;
    await waitFor(req, waitMs, () => !mine() || status.url !== null || TERMINAL.has(status.state));
    if (!mine()) return send(res, 200, { provider, state: 'idle', url: null });
    return send(res, 200, { provider, state: status.state, url: status.url });
  }

  if (url.pathname === '/credentials/status') {
    onlyMethod(req, 'GET');
    const waitMs = waitMsOf(url);
    const since = url.searchParams.get('since');
    await waitFor(req, waitMs, () => since === null || status.state !== since);
    return send(res, 200, { ...status });
  }

  if (url.pathname === '/credentials/get') {
    onlyMethod(req, 'GET');
    if (status.state === 'delivered') throw new HttpError(410, { error: 'already delivered' });
    if (status.state !== 'captured' || !captured) throw new HttpError(409, { error: 'not captured', state: status.state });
    const body = takeCredential();
    send(res, 200, body);
    setStatus({ state: 'delivered' });
    return;
  }

  throw new HttpError(404, { error: 'not found' });
}

const server = http.createServer((req, res) => {
  req.on('error', () => {});
  res.on('error', () => {});
  if (!authorized(req)) {
    req.resume();
    send(res, 401, { error: 'unauthorized' }, { 'www-authenticate': 'Bearer' });
    return;
  }
  route(req, res).catch((err) => {
    if (err instanceof HttpError) {
      const headers = err.status === 405 ? { allow: err.body.allow } : {};
      // A refused body is not read on: close the connection rather than drain it.
      if (err.status === 413) headers.connection = 'close';
      send(res, err.status, err.body, headers);
      return;
    }
    console.error(`request failed: ${err.message}`);
    send(res, 500, { error: 'internal error' });
  });
});
server.headersTimeout = 10_000;
// Long polls hold a response up to 60 s; the request itself must arrive well within that.
server.requestTimeout = 90_000;
server.maxHeadersCount = 50;
server.on('clientError', (_err, socket) => {
  const body = '{"error":"bad request"}';
  if (!socket.writable) return socket.destroy();
  socket.end(
    `HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\ncontent-length: ${body.length}\r\nconnection: close\r\n\r\n${body}`,
  );
});
server.listen(PORT, ADDRESS, () => console.log(`agent listening on ${ADDRESS}:${server.address().port}`));

function shutdown() {
  const exit = () => {
    if (captured) for (const f of captured.files) f.content.fill(0);
    server.close(() => process.exit(0));
    server.closeAllConnections();
  };
  const current = login;
  if (!current) return exit();
  // The login's processes go first (Codex holds its callback port): exit once the group's leader is gone.
  if (!current.exited) {
    current.child.once('exit', () => {
      closeLogin(current);
      exit();
    });
    current.capturing = true;
    killGroup(current);
    return;
  }
  closeLogin(current);
  exit();
}
for (const sig of ['SIGTERM', 'SIGINT']) process.on(sig, shutdown);
