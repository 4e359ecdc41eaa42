import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { afterAll, afterEach, beforeAll } from 'vitest';
import { procStatFields } from '../../system/processes';

// Test support: the crash and race tests run vault and writer code in real child processes, which they kill with
// SIGKILL. The child's entry (crashChild.ts) is bundled once per test file with esbuild; better-sqlite3 stays
// external and is found through NODE_PATH.

const here = path.dirname(fileURLToPath(import.meta.url));
const repoRoot = path.resolve(here, '../../../..');

/** In a test file: the child is bundled before its tests and removed after; call the getter inside a test. */
export function useCrashChild(): () => string {
  let dir = '';
  let bundle = '';
  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fdt-crash-child-'));
    bundle = await bundleCrashChild(dir);
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
  return () => bundle;
}

/** In a test file: temp dirs that are removed after each test. */
export function useTempDirs(prefix: string): () => string {
  const dirs: string[] = [];
  afterEach(() => {
    for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
  });
  return () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
    dirs.push(dir);
    return dir;
  };
}

async function bundleCrashChild(outDir: string): Promise<string> {
  const outfile = path.join(outDir, 'crash-child.cjs');
  await build({
    entryPoints: [path.join(here, 'crashChild.ts')],
    outfile,
    bundle: true,
    platform: 'node',
    target: 'node20',
    format: 'cjs',
    external: ['better-sqlite3'],
    logLevel: 'warning',
  });
  return outfile;
}

export interface Child {
  proc: ChildProcess;
  /** Lines the child printed so far. */
  lines: string[];
  /** Resolves with the first line matching, or rejects when the child ends first. */
  waitForLine(match: (line: string) => boolean): Promise<string>;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /**
   * SIGKILL to the child's whole process group (its debugfs or e2fsck die with it, as under systemd); resolves
   * once no process of the group is left (a grandchild is not ours to wait for, so /proc is watched).
   */
  killGroup(): Promise<void>;
}

export function spawnCrashChild(bundle: string, args: readonly string[]): Child {
  const proc = spawn(process.execPath, [bundle, ...args], {
    stdio: ['pipe', 'pipe', 'pipe'],
    detached: true,
    env: { ...process.env, NODE_PATH: path.join(repoRoot, 'node_modules') },
  });
  const lines: string[] = [];
  const waiters: { match: (l: string) => boolean; resolve: (l: string) => void; reject: (e: Error) => void }[] = [];
  let stderr = '';
  let partial = '';
  proc.stdout!.on('data', (chunk: Buffer) => {
    const parts = (partial + chunk.toString('utf8')).split('\n');
    partial = parts.pop() ?? '';
    for (const line of parts) {
      lines.push(line);
      for (const w of [...waiters]) {
        if (w.match(line)) {
          waiters.splice(waiters.indexOf(w), 1);
          w.resolve(line);
        }
      }
    }
  });
  proc.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
  proc.stdin!.on('error', () => undefined);
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    proc.once('close', (code, signal) => {
      for (const w of waiters.splice(0)) {
        w.reject(new Error(`child ended (${code ?? signal}) before the awaited line; stderr: ${stderr}`));
      }
      resolve({ code, signal });
    });
  });
  return {
    proc,
    lines,
    exited,
    waitForLine(match) {
      const seen = lines.find(match);
      if (seen !== undefined) return Promise.resolve(seen);
      if (proc.exitCode !== null || proc.signalCode !== null) {
        return Promise.reject(new Error(`child already ended; stderr: ${stderr}`));
      }
      return new Promise((resolve, reject) => waiters.push({ match, resolve, reject }));
    },
    async killGroup() {
      try {
        process.kill(-proc.pid!, 'SIGKILL');
      } catch {
        // Already gone.
      }
      await exited;
      const deadline = Date.now() + 10_000;
      while (groupMembers(proc.pid!).length > 0) {
        if (Date.now() > deadline) throw new Error(`process group ${proc.pid} did not die`);
        await new Promise((r) => setTimeout(r, 5));
      }
    },
  };
}

/** Live (not zombie) processes whose process group is `pgid`. */
function groupMembers(pgid: number): number[] {
  const members: number[] = [];
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const fields = procStatFields(Number(entry)); // null: gone meanwhile
    if (fields && Number(fields[2]) === pgid && fields[0] !== 'Z') members.push(Number(entry));
  }
  return members;
}

/** Every regular file below `dir` (the SQLite file, its WAL and shm, key files...). */
export function filesBelow(dir: string): string[] {
  const out: string[] = [];
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, entry.name);
    if (entry.isDirectory()) out.push(...filesBelow(p));
    else if (entry.isFile()) out.push(p);
  }
  return out;
}
