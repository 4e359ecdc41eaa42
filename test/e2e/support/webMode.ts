import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { makeTempDir, waitForOutput } from '../../rig/tmp';

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const WEB_ENTRY = path.join(REPO_ROOT, 'out/main/web.js');

export interface WebMode {
  /** The printed URL: it carries the token and works until web mode stops. */
  url: string;
  origin: string;
  port: number;
  dataDir: string;
  output(): string;
  stop(): Promise<void>;
}

let built: Promise<void> | null = null;

/** Builds the app (electron-vite) once per run when its output is missing. */
export function ensureAppBuilt(): Promise<void> {
  built ??= new Promise((resolve, reject) => {
    try {
      if (!fs.existsSync(WEB_ENTRY) || !fs.existsSync(path.join(REPO_ROOT, 'out/renderer/index.html'))) {
        execFileSync(path.join(REPO_ROOT, 'node_modules/.bin/electron-vite'), ['build'], {
          cwd: REPO_ROOT,
          stdio: 'inherit',
        });
      }
      resolve();
    } catch (err) {
      reject(err as Error);
    }
  });
  return built;
}

/**
 * `node out/main/web.js` on a free port (or `port`) with a private data dir; stop() ends it and removes the dir.
 */
export async function startWebMode(options: { localDaemon?: string; port?: number } = {}): Promise<WebMode> {
  await ensureAppBuilt();
  const dataDir = makeTempDir('web');
  const args = [WEB_ENTRY, '--port', String(options.port ?? 0), '--data-dir', dataDir];
  if (options.localDaemon) args.push('--local-daemon', options.localDaemon);
  const child: ChildProcess = spawn(process.execPath, args, {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, SSH_AUTH_SOCK: '' },
  });
  let out = '';
  child.stdout!.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr!.on('data', (c: Buffer) => (out += c.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  let line: string;
  try {
    line = await waitForOutput(
      child.stdout!,
      /Firedeck web mode: http:\/\/127\.0\.0\.1:\d+\/\?token=[A-Za-z0-9_-]+/,
      20_000,
      'web mode',
    );
  } catch (err) {
    child.kill('SIGKILL');
    fs.rmSync(dataDir, { recursive: true, force: true });
    // What it printed on stderr says why it did not start.
    throw new Error(`${(err as Error).message}\nweb mode printed:\n${out.slice(-4000)}`);
  }
  const url = line.replace('Firedeck web mode: ', '');
  const parsed = new URL(url);
  return {
    url,
    origin: parsed.origin,
    port: Number(parsed.port),
    dataDir,
    output: () => out,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        await exited;
      }
      fs.rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
