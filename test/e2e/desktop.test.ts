import fs from 'node:fs';
import path from 'node:path';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defaultCacheDir } from '../../host-daemon/src/images/builder';
import { ImageCatalog } from '../../host-daemon/src/images/catalog';
import { ImageService } from '../../host-daemon/src/images/service';
import type { Vm } from '../../src/shared/protocol/vm';
import { removeLinks } from '../integration/daemon-helpers';
import { launchChromium, type ChromiumRig } from '../rig/chromium';
import { callDaemon, startDaemon, type DaemonRig } from '../rig/daemon';
import { startSshd, type Sshd } from '../rig/sshd';
import { addSshHost, trustAndConnect } from './support/ui';
import { REPO_ROOT, startWebMode, type WebMode } from './support/webMode';

const PREFIX = 'fdt5d';
/** A browser VM (systemd, Xvnc, openbox, Firefox) booting under TCG on a busy two-core machine. */
const BOOT_TIMEOUT_MS = 900_000;
const CANVAS = '[data-testid="desktop-screen"] canvas';

interface CanvasStats {
  width: number;
  height: number;
  /** Share of the sampled pixels that have the most common colour. */
  dominantShare: number;
  distinctColours: number;
  /** Share that is near white (Firefox's about:blank page and toolbars). */
  lightShare: number;
  /** Share in the blue of Firefox's highlighted address-bar suggestion, which shows only once text is typed. */
  highlightShare: number;
}

/** Samples noVNC's canvas (the guest's framebuffer as received) in the page. */
function canvasStats(page: Page): Promise<CanvasStats | null> {
  return page.evaluate((selector): CanvasStats | null => {
    const canvas = document.querySelector<HTMLCanvasElement>(selector);
    const ctx = canvas?.getContext('2d');
    if (!canvas || !ctx || canvas.width === 0 || canvas.height === 0) return null;
    const data = ctx.getImageData(0, 0, canvas.width, canvas.height).data;
    const counts = new Map<number, number>();
    let samples = 0;
    let light = 0;
    let highlight = 0;
    for (let i = 0; i < data.length; i += 4 * 7) {
      const r = data[i]!;
      const g = data[i + 1]!;
      const b = data[i + 2]!;
      samples++;
      const key = (r << 16) | (g << 8) | b;
      counts.set(key, (counts.get(key) ?? 0) + 1);
      if (r > 200 && g > 200 && b > 200) light++;
      if (r < 80 && g < 150 && b > 180) highlight++;
    }
    return {
      width: canvas.width,
      height: canvas.height,
      dominantShare: Math.max(...counts.values()) / samples,
      distinctColours: counts.size,
      lightShare: light / samples,
      highlightShare: highlight / samples,
    };
  }, CANVAS);
}

/** What the canvas must show: at least these shares of near-white and of highlight-blue pixels. */
interface CanvasGoal {
  minLightShare?: number;
  minHighlightShare?: number;
}

/** Waits (polling in the page; no event says "the guest painted this") until the canvas meets the goal. */
async function waitForCanvas(page: Page, what: string, goal: CanvasGoal, timeoutMs: number): Promise<CanvasStats> {
  try {
    await page.waitForFunction(
      ({ selector, minLight, minHighlight }) => {
        const canvas = document.querySelector<HTMLCanvasElement>(selector);
        const ctx = canvas?.getContext('2d');
        if (!canvas || !ctx || canvas.width === 0) return false;
        const data = ctx.getImageData(0, 0, canvas.width, canvas.height).data;
        let samples = 0;
        let light = 0;
        let highlight = 0;
        for (let i = 0; i < data.length; i += 4 * 7) {
          const r = data[i]!;
          const g = data[i + 1]!;
          const b = data[i + 2]!;
          samples++;
          if (r > 200 && g > 200 && b > 200) light++;
          if (r < 80 && g < 150 && b > 180) highlight++;
        }
        return light / samples >= minLight && highlight / samples >= minHighlight;
      },
      { selector: CANVAS, minLight: goal.minLightShare ?? 0, minHighlight: goal.minHighlightShare ?? 0 },
      { polling: 500, timeout: timeoutMs },
    );
  } catch (err) {
    const view = await page
      .evaluate(() => document.querySelector('.desktop-view .toolbar')?.textContent ?? '(no desktop view)')
      .catch(() => '(page gone)');
    throw new Error(
      `${what}: ${(err as Error).message}; canvas now ${JSON.stringify(await canvasStats(page))}; view: ${view}`,
    );
  }
  const stats = await canvasStats(page);
  if (stats === null) throw new Error(`${what}: the canvas went away`);
  return stats;
}

describe('the desktop of a real browser VM (Xvnc, openbox, Firefox) through firedeckd vnc over SSH', () => {
  let daemon: DaemonRig;
  let sshd: Sshd;
  let web: WebMode;
  let browser: ChromiumRig;
  let page: Page;
  let vm: Vm;

  beforeAll(async () => {
    removeLinks(PREFIX);
    daemon = await startDaemon({
      env: { FIREDECK_BRIDGE: `${PREFIX}br0`, FIREDECK_CIDR: '10.213.58.0/24', FIREDECK_DEVICE_PREFIX: PREFIX },
    });
    // The golden browser image as the pipeline builds it (reused from the cache when the recipe is unchanged).
    const golden = new ImageCatalog(path.join(defaultCacheDir(), 'golden'));
    const built = await new ImageService({
      catalog: golden,
      emit: (e) => {
        if (e.type === 'image.build' && e.line === null)
          process.stderr.write(`[browser image] ${e.step} ${e.status}\n`);
      },
    }).build({ recipe: 'browser' });
    const source = golden.resolve(`browser@${built.image.version}`);
    await new ImageCatalog(daemon.stateDir).importVersion('browser', source.dir);

    sshd = await startSshd({ pathPrepend: [daemon.binDir] });
    web = await startWebMode();
    browser = await launchChromium();
    page = await browser.newPage();
    page.on('dialog', (d) => void d.accept());
    await page.goto(web.url);
    await addSshHost(page, sshd, 'rig');
    await trustAndConnect(page, 'rig', sshd.hostKeyFingerprint);

    vm = await daemon.call('vm.create', {
      name: 'desk-a',
      kind: 'browser',
      owner: 'support@example.org',
      image: 'browser',
    });
    vm = await callDaemon(
      daemon.socketPath,
      'vm.waitReady',
      { id: vm.id, marker: 'vnc', timeoutSeconds: BOOT_TIMEOUT_MS / 1000 },
      BOOT_TIMEOUT_MS + 10_000,
    );
  }, BOOT_TIMEOUT_MS + 1_200_000);

  afterAll(async () => {
    await browser?.close();
    await web?.stop();
    await sshd?.stop();
    if (daemon) {
      for (const v of await daemon.call('vm.list', {}).catch(() => [] as Vm[])) {
        await daemon.call('vm.destroy', { id: v.id }).catch(() => undefined);
      }
      await daemon.stop();
    }
    removeLinks(PREFIX);
  }, 180_000);

  it(
    'shows the guest screen with Firefox (pixel check), and the VNC password never reaches the app',
    async () => {
      await page.getByRole('button', { name: 'Fleet' }).click();
      await page.getByTestId('vm-row-desk-a').getByRole('button', { name: 'desk-a' }).click();
      await page.getByTestId('vm-title').filter({ hasText: 'desk-a' }).waitFor();
      await page.getByRole('tab', { name: 'desktop' }).click();
      await page
        .getByTestId('desktop-state')
        .filter({ hasText: /^connected$/ })
        .waitFor({ timeout: 60_000 });

      // The framebuffer is the guest's Xvnc (-geometry 1280x800), and Firefox's window shows on it.
      const shown = await waitForCanvas(page, "Firefox's window on the desktop", { minLightShare: 0.2 }, 600_000);
      expect({ width: shown.width, height: shown.height }).toEqual({ width: 1280, height: 800 });
      expect(shown.dominantShare).toBeLessThan(0.97);
      expect(shown.distinctColours).toBeGreaterThan(8);
      fs.mkdirSync(path.join(REPO_ROOT, 'test-results'), { recursive: true });
      await page.locator(CANVAS).screenshot({ path: path.join(REPO_ROOT, 'test-results/e2e-desktop.png') });

      const secrets = JSON.parse(fs.readFileSync(path.join(daemon.stateDir, 'vms', vm.id, 'secrets.json'), 'utf8')) as {
        vncPassword: string;
      };
      expect(await page.getByRole('textbox', { name: 'VNC password' }).count()).toBe(0);
      expect(await page.content()).not.toContain(secrets.vncPassword);
      expect(web.output()).not.toContain(secrets.vncPassword);
    },
    BOOT_TIMEOUT_MS,
  );
});
