import fs from 'node:fs';
import type { Page } from 'playwright-core';
import { findElectron, launchChromium, launchElectron, type ChromiumRig, type ElectronRig } from '../../rig/chromium';
import { makeTempDir } from '../../rig/tmp';
import { ensureAppBuilt, REPO_ROOT, startWebMode, type WebMode } from './webMode';

/** How the app under test runs: web mode in Debian's Chromium, or the built app under Playwright's Electron launcher. */
export type AppMode = 'web' | 'electron';

let reported = false;

/**
 * The modes the end-to-end specs run in on this machine: web mode always, Electron as well wherever its binary
 * is installed. Where it is not (it is downloaded from GitHub, which this machine cannot reach), that is said once.
 */
export function appModes(): AppMode[] {
  if (findElectron() !== null) return ['web', 'electron'];
  if (!reported) {
    reported = true;
    console.info(
      'Electron binary absent here (node_modules/electron/dist): the e2e specs run in web mode (Chromium) only.',
    );
  }
  return ['web'];
}

/** One running app with its window open on the renderer. */
export interface AppUnderTest {
  mode: AppMode;
  page: Page;
  /** The app's data dir (its SQLite store with hosts and pinned keys). */
  dataDir: string;
  /** Everything the app's main process printed so far. */
  output(): string;
  /** Web mode's server (token URL, origin), null under Electron. */
  web: WebMode | null;
  /** The Chromium that shows web mode, null under Electron. */
  browser: ChromiumRig | null;
  /** Resizes what the renderer sees (the browser viewport, or the Electron window's content). */
  resize(width: number, height: number): Promise<void>;
  stop(): Promise<void>;
}

export interface StartAppOptions {
  /** Command prefix that runs the local firedeckd for the embedded host; without it there is no local host. */
  localDaemon?: string;
}

export async function startApp(mode: AppMode, options: StartAppOptions = {}): Promise<AppUnderTest> {
  return mode === 'web' ? startInChromium(options) : startInElectron(options);
}

async function startInChromium(options: StartAppOptions): Promise<AppUnderTest> {
  const web = await startWebMode(options.localDaemon ? { localDaemon: options.localDaemon } : {});
  let browser: ChromiumRig | null = null;
  try {
    browser = await launchChromium();
    const page = await browser.newPage();
    await page.goto(web.url);
    const shown = browser;
    return {
      mode: 'web',
      page,
      dataDir: web.dataDir,
      output: () => web.output(),
      web,
      browser,
      resize: (width, height) => page.setViewportSize({ width, height }),
      async stop() {
        await shown.close();
        await web.stop();
      },
    };
  } catch (err) {
    await browser?.close().catch(() => undefined);
    await web.stop();
    throw err;
  }
}

async function startInElectron(options: StartAppOptions): Promise<AppUnderTest> {
  await ensureAppBuilt();
  const dataDir = makeTempDir('electron');
  let rig: ElectronRig | null = null;
  try {
    rig = await launchElectron(REPO_ROOT, {
      FIREDECK_DATA_DIR: dataDir,
      FIREDECK_LOCAL_DAEMON: options.localDaemon ?? '',
      SSH_AUTH_SOCK: '',
    });
    const app = rig.app;
    let out = '';
    app.process().stdout?.on('data', (c: Buffer) => (out += c.toString()));
    app.process().stderr?.on('data', (c: Buffer) => (out += c.toString()));
    const page = await rig.firstWindow();
    await page.waitForLoadState('domcontentloaded');
    const shown = rig;
    return {
      mode: 'electron',
      page,
      dataDir,
      output: () => out,
      web: null,
      browser: null,
      async resize(width, height) {
        await app.evaluate(
          ({ BrowserWindow }, size) => BrowserWindow.getAllWindows()[0]?.setContentSize(size.width, size.height),
          { width, height },
        );
      },
      async stop() {
        await shown.close();
        fs.rmSync(dataDir, { recursive: true, force: true });
      },
    };
  } catch (err) {
    await rig?.close().catch(() => undefined);
    fs.rmSync(dataDir, { recursive: true, force: true });
    throw err;
  }
}
