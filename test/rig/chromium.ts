import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import { chromium, _electron, type BrowserContext, type ElectronApplication, type Page } from 'playwright-core';
import { makeTempDir } from './tmp';

const CHROMIUM_CANDIDATES = ['/usr/lib/chromium/chromium', '/usr/bin/chromium', '/usr/bin/chromium-browser'];

export const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
];

/** Debian's Chromium binary; throws naming the package when it is not installed. */
export function findChromium(): string {
  for (const file of CHROMIUM_CANDIDATES) {
    try {
      fs.accessSync(file, fs.constants.X_OK);
      return file;
    } catch {
      // try the next place
    }
  }
  throw new Error(
    `test rig: chromium is missing (looked at ${CHROMIUM_CANDIDATES.join(', ')}); install it with: apt-get install chromium`,
  );
}

export interface ChromiumRig {
  context: BrowserContext;
  newPage(): Promise<Page>;
  close(): Promise<void>;
}

/** Chromium through playwright-core with a fresh profile dir, removed again by close(). */
export async function launchChromium(): Promise<ChromiumRig> {
  const executablePath = findChromium();
  const userDataDir = makeTempDir('chromium');
  let context: BrowserContext;
  try {
    context = await chromium.launchPersistentContext(userDataDir, {
      executablePath,
      headless: true,
      args: CHROMIUM_ARGS,
      viewport: { width: 1280, height: 800 },
    });
  } catch (err) {
    fs.rmSync(userDataDir, { recursive: true, force: true });
    throw new Error(`test rig: chromium at ${executablePath} failed to start: ${(err as Error).message}`);
  }
  return {
    context,
    newPage: () => context.newPage(),
    async close() {
      await context.close();
      fs.rmSync(userDataDir, { recursive: true, force: true });
    },
  };
}

/**
 * The installed Electron binary, or null when only the npm package is there (its binary is downloaded on
 * first use, which this must not trigger: so the path is read from the package's files, never required).
 */
export function findElectron(): string | null {
  const packaged = packagedApp();
  if (packaged !== null) return packaged;
  const require = createRequire(import.meta.url);
  let pkgDir: string;
  try {
    pkgDir = path.dirname(require.resolve('electron/package.json'));
  } catch {
    return null;
  }
  const pathFile = path.join(pkgDir, 'path.txt');
  if (!fs.existsSync(pathFile)) return null;
  const binary = path.join(pkgDir, 'dist', fs.readFileSync(pathFile, 'utf8').trim());
  return fs.existsSync(binary) ? binary : null;
}

/**
 * FIREDECK_E2E_ELECTRON_APP: the executable of a packaged app (built with FIREDECK_FUSES=test) to run the Electron
 * specs against instead of node_modules/electron with out/; the release workflow sets it. Set but missing is an error.
 */
function packagedApp(): string | null {
  const file = process.env.FIREDECK_E2E_ELECTRON_APP;
  if (!file) return null;
  if (!fs.existsSync(file)) throw new Error(`test rig: FIREDECK_E2E_ELECTRON_APP=${file} does not exist`);
  return file;
}

export interface ElectronRig {
  app: ElectronApplication;
  firstWindow(): Promise<Page>;
  close(): Promise<void>;
}

/** The built app (`out/main/index.js`, or the packaged app) under Playwright's Electron launcher. */
export async function launchElectron(repoRoot: string, env: Record<string, string>): Promise<ElectronRig> {
  const executablePath = findElectron();
  if (executablePath === null)
    throw new Error('test rig: the Electron binary is not installed (node_modules/electron/dist)');
  // A packaged app loads its own app.asar (and with its fuses, nothing else).
  const appArgs = packagedApp() === null ? [path.join(repoRoot, 'out/main/index.js')] : [];
  const app = await _electron.launch({
    executablePath,
    args: [...appArgs, '--no-sandbox', '--disable-gpu'],
    env: { ...(process.env as Record<string, string>), ...env },
  });
  return { app, firstWindow: () => app.firstWindow(), close: () => app.close() };
}
