#!/usr/bin/env node
// `npm start`: builds the app and the daemon, makes sure a local firedeckd serves this machine (the embedded
// default host), then opens the Electron window, or, where Electron's binary cannot be had, serves web mode on
// 127.0.0.1 and prints its URL.
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const say = (line) => process.stdout.write(`firedeck: ${line}\n`);

execFileSync('npm', ['run', '--silent', 'build'], { cwd: root, stdio: 'inherit' });

const daemonBundle = path.join(root, 'host-daemon/dist/firedeckd.cjs');
const isRoot = process.getuid?.() === 0;
const runDir = process.env.FIREDECK_RUN_DIR ?? '/run/firedeck';
const socketPath = process.env.FIREDECK_SOCKET ?? path.join(runDir, 'firedeckd.sock');
const stateDir = process.env.FIREDECK_STATE_DIR ?? '/var/lib/firedeck';

function socketAnswers(p) {
  return new Promise((resolve) => {
    const s = net.connect(p);
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

async function ensureLocalDaemon() {
  if (await socketAnswers(socketPath)) {
    say(`local firedeckd already serving ${socketPath}`);
    return;
  }
  if (!isRoot) {
    say(
      `no local firedeckd at ${socketPath}; it runs VMs and needs root. Start it with: sudo node ${daemonBundle} serve`,
    );
    return;
  }
  fs.mkdirSync(stateDir, { recursive: true });
  const logPath = path.join(stateDir, 'firedeckd.log');
  const log = fs.openSync(logPath, 'a');
  const child = spawn(process.execPath, [daemonBundle, 'serve'], {
    detached: true,
    stdio: ['ignore', log, log],
    env: { ...process.env, FIREDECK_SOCKET: socketPath, FIREDECK_RUN_DIR: runDir, FIREDECK_STATE_DIR: stateDir },
  });
  child.unref();
  const deadline = Date.now() + 20_000;
  // The daemon creates its socket when ready; watch its directory instead of sleeping.
  fs.mkdirSync(path.dirname(socketPath), { recursive: true });
  await new Promise((resolve, reject) => {
    const watcher = fs.watch(path.dirname(socketPath));
    const check = async () => {
      if (await socketAnswers(socketPath)) {
        watcher.close();
        clearTimeout(timer);
        resolve();
      }
    };
    const timer = setTimeout(() => {
      watcher.close();
      reject(new Error(`firedeckd did not start within 20 s; see ${logPath}`));
    }, deadline - Date.now());
    watcher.on('change', () => void check());
    void check();
  });
  say(`started local firedeckd (pid ${child.pid}), serving ${socketPath}; log: ${logPath}`);
}

await ensureLocalDaemon();

/**
 * So that a first start shows real VMs: publish the small `test` image (built from Debian packages, cached) and
 * boot one demo CLI VM from it, unless VMs exist already. FIREDECK_DEMO=0 turns this off.
 */
function ensureDemoVm() {
  if (!isRoot || process.env.FIREDECK_DEMO === '0') return;
  const firedeckd = (args, opts = {}) =>
    spawnSync(process.execPath, [daemonBundle, ...args], {
      encoding: 'utf8',
      env: { ...process.env, FIREDECK_SOCKET: socketPath, FIREDECK_RUN_DIR: runDir, FIREDECK_STATE_DIR: stateDir },
      ...opts,
    });
  const images = firedeckd(['image', 'list', 'test', '--json']);
  const published = images.status === 0 && images.stdout.trim() !== '' && images.stdout.trim() !== '[]';
  if (!published) {
    say('building the small `test` image for a demo VM (first start only; FIREDECK_DEMO=0 skips this)');
    const build = firedeckd(['image', 'build', 'test'], { stdio: ['ignore', 'inherit', 'inherit'] });
    if (build.status !== 0) {
      say('the demo image did not build (see above); the console starts without a demo VM');
      return;
    }
  }
  const vms = firedeckd(['vm', 'ls', '--all', '--json']);
  let existing = [];
  try {
    existing = JSON.parse(vms.stdout);
  } catch {
    existing = [];
  }
  if (existing.some((vm) => vm.state !== 'destroyed')) return;
  const create = firedeckd([
    'vm',
    'create',
    '--name',
    'demo',
    '--kind',
    'cli',
    '--owner',
    'operator',
    '--image',
    'test',
  ]);
  say(create.status === 0 ? 'created demo VM `demo` (booting)' : `demo VM not created: ${create.stderr.trim()}`);
}
ensureDemoVm();
const shellQuote = (s) => `'${s.replace(/'/g, `'\\''`)}'`;
const localDaemon = `${shellQuote(process.execPath)} ${shellQuote(daemonBundle)}`;
const env = { ...process.env, FIREDECK_LOCAL_DAEMON: localDaemon, FIREDECK_SOCKET: socketPath };

/** The installed Electron binary, found without `require('electron')`, which would try to download it. */
function electronBinary() {
  const pkg = path.join(root, 'node_modules/electron');
  const pathFile = path.join(pkg, 'path.txt');
  if (!fs.existsSync(pathFile)) return null;
  const bin = path.join(pkg, 'dist', fs.readFileSync(pathFile, 'utf8').trim());
  return fs.existsSync(bin) ? bin : null;
}

let electron = electronBinary();
if (electron === null && process.env.FIREDECK_WEB !== '1') {
  // Electron 42+ downloads its binary on first use; this fails fast where GitHub cannot be reached.
  const installer = path.join(root, 'node_modules/electron/install.js');
  if (fs.existsSync(installer)) spawnSync(process.execPath, [installer], { stdio: 'ignore', timeout: 120_000 });
  electron = electronBinary();
}
const hasDisplay = Boolean(process.env.DISPLAY || process.env.WAYLAND_DISPLAY) || process.platform === 'darwin';

if (electron !== null && hasDisplay && process.env.FIREDECK_WEB !== '1') {
  const args = [root, ...(isRoot ? ['--no-sandbox'] : [])];
  const app = spawn(electron, args, { stdio: 'inherit', env });
  app.on('exit', (code) => process.exit(code ?? 0));
} else {
  const why =
    electron === null
      ? "Electron's binary is not installed and cannot be downloaded here"
      : 'no display to open a window on';
  say(`${why}: serving web mode on 127.0.0.1 instead`);
  const web = spawn(process.execPath, [path.join(root, 'out/main/web.js')], { stdio: 'inherit', env });
  const stop = () => web.kill('SIGTERM');
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  web.on('exit', (code) => process.exit(code ?? 0));
}
