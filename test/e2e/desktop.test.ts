import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defaultCacheDir } from '../../host-daemon/src/images/builder';
import { ImageCatalog } from '../../host-daemon/src/images/catalog';
import { ImageService } from '../../host-daemon/src/images/service';
import type { Vm } from '../../src/shared/protocol/vm';
import { callDaemon, type DaemonRig } from '../rig/daemon';
import { appModes, type AppUnderTest } from './support/app';
import { recordedKeys, startKeyRecording } from './support/rfbKeys';
import { startSshStack, type SshStack } from './support/sshStack';
import { REPO_ROOT } from './support/webMode';

const PREFIX = 'fdt5d';
const CIDR = '10.213.58.0/24';
/** The host's side of the VMs' bridge (the subnet's gateway), where the guest's Firefox can reach this test. */
const GATEWAY = '10.213.58.1';
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

/** Waits (polling: no event says "the guest painted this") until the canvas meets the goal. */
async function waitForCanvas(page: Page, what: string, goal: CanvasGoal, timeoutMs: number): Promise<CanvasStats> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const stats = await canvasStats(page);
    if (
      stats !== null &&
      stats.lightShare >= (goal.minLightShare ?? 0) &&
      stats.highlightShare >= (goal.minHighlightShare ?? 0)
    ) {
      return stats;
    }
    if (Date.now() >= deadline) {
      const view = await page
        .evaluate(() => document.querySelector('.desktop-view .toolbar')?.textContent ?? '(no desktop view)')
        .catch(() => '(page gone)');
      throw new Error(`${what}: not shown within ${timeoutMs} ms; canvas now ${JSON.stringify(stats)}; view: ${view}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
}

/** Waits until noVNC's canvas has not changed for `quietMs` (sampled every 250 ms): the guest is done drawing. */
async function waitForStillCanvas(page: Page, what: string, quietMs: number, timeoutMs: number): Promise<void> {
  await page.evaluate(() => delete (window as unknown as { __fdStill?: unknown }).__fdStill);
  try {
    await page.waitForFunction(
      ({ selector, quietMs }) => {
        const canvas = document.querySelector<HTMLCanvasElement>(selector);
        const ctx = canvas?.getContext('2d');
        if (!canvas || !ctx || canvas.width === 0) return false;
        const data = ctx.getImageData(0, 0, canvas.width, canvas.height).data;
        let hash = 2166136261;
        for (let i = 0; i < data.length; i += 4 * 3) {
          hash = Math.imul(hash ^ (data[i]! | (data[i + 1]! << 8) | (data[i + 2]! << 16)), 16777619);
        }
        const w = window as unknown as { __fdStill?: { hash: number; since: number } };
        const now = performance.now();
        if (w.__fdStill?.hash !== hash) w.__fdStill = { hash, since: now };
        return now - w.__fdStill.since >= quietMs;
      },
      { selector: CANVAS, quietMs },
      { polling: 250, timeout: timeoutMs },
    );
  } catch (err) {
    throw new Error(`${what}: the screen did not settle: ${(err as Error).message}`);
  }
}

/** An HTTP listener on the bridge that records the paths the guest asks for. */
interface PathRecorder {
  port: number;
  paths: string[];
  /** Resolves with the first requested path that starts with `prefix`. */
  waitFor(prefix: string, timeoutMs: number): Promise<string>;
  close(): Promise<void>;
}

async function recordPaths(address: string): Promise<PathRecorder> {
  const paths: string[] = [];
  const waiters = new Set<() => void>();
  const server = http.createServer((req, res) => {
    paths.push(req.url ?? '');
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
    res.end('<!doctype html><title>Firedeck desktop test</title><p>received</p>');
    waiters.forEach((w) => w());
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, address, resolve);
  });
  return {
    port: (server.address() as AddressInfo).port,
    paths,
    waitFor(prefix, timeoutMs) {
      return new Promise((resolve, reject) => {
        const check = (): void => {
          const hit = paths.find((p) => p.startsWith(prefix));
          if (hit === undefined) return;
          clearTimeout(timer);
          waiters.delete(check);
          resolve(hit);
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(
            new Error(`the guest asked for no ${prefix}… within ${timeoutMs} ms (asked for: ${JSON.stringify(paths)})`),
          );
        }, timeoutMs);
        waiters.add(check);
        check();
      });
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

describe.each(appModes())(
  'the desktop (%s) of a real browser VM (Xvnc, openbox, Firefox) through firedeckd vnc over SSH',
  (mode) => {
    let stack: SshStack | undefined;
    let daemon: DaemonRig;
    let app: AppUnderTest;
    let page: Page;
    let vm: Vm;

    beforeAll(async () => {
      stack = await startSshStack({
        mode,
        prefix: PREFIX,
        cidr: CIDR,
        // The golden browser image as the pipeline builds it (reused from the cache when the recipe is unchanged).
        async installImages(stateDir) {
          const golden = new ImageCatalog(path.join(defaultCacheDir(), 'golden'));
          const built = await new ImageService({
            catalog: golden,
            emit: (e) => {
              if (e.type === 'image.build' && e.line === null)
                process.stderr.write(`[browser image] ${e.step} ${e.status}\n`);
            },
          }).build({ recipe: 'browser' });
          await new ImageCatalog(stateDir).importVersion(
            'browser',
            golden.resolve(`browser@${built.image.version}`).dir,
          );
        },
      });
      ({ daemon, app, page } = stack);

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
      await stack?.stop();
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

        const secrets = JSON.parse(
          fs.readFileSync(path.join(daemon.stateDir, 'vms', vm.id, 'secrets.json'), 'utf8'),
        ) as {
          vncPassword: string;
        };
        expect(await page.getByRole('textbox', { name: 'VNC password' }).count()).toBe(0);
        expect(await page.content()).not.toContain(secrets.vncPassword);
        expect(app.output()).not.toContain(secrets.vncPassword);
      },
      BOOT_TIMEOUT_MS,
    );

    it('scales the screen to fit the view, or shows it 1:1', async () => {
      const size = (): Promise<{ width: number; height: number; frameWidth: number }> =>
        page.evaluate((selector) => {
          const canvas = document.querySelector<HTMLCanvasElement>(selector)!;
          const frame = document.querySelector<HTMLElement>('[data-testid="desktop-screen"]')!;
          const box = canvas.getBoundingClientRect();
          return { width: Math.round(box.width), height: Math.round(box.height), frameWidth: frame.clientWidth };
        }, CANVAS);
      const fitted = await size();
      // The view is smaller than the guest's 1280×800 (header, tabs and toolbar take room), so fitting shrinks it.
      expect(fitted.height).toBeLessThan(800);
      expect(fitted.width).toBeLessThanOrEqual(fitted.frameWidth);
      const scale = page.getByRole('checkbox', { name: 'scale to fit' });
      await scale.uncheck();
      await page.waitForFunction((selector) => {
        const box = document.querySelector(selector)!.getBoundingClientRect();
        return Math.round(box.width) === 1280 && Math.round(box.height) === 800;
      }, CANVAS);
      await scale.check();
      await page.waitForFunction(
        ({ selector, height }) =>
          Math.round(document.querySelector(selector)!.getBoundingClientRect().height) === height,
        { selector: CANVAS, height: fitted.height },
      );
      // Changing the scale does not reconnect.
      expect(await page.getByTestId('desktop-state').innerText()).toBe('connected');

      // Fullscreen shows the desktop view alone, and goes back.
      await page.getByRole('button', { name: 'Fullscreen' }).click();
      await page.waitForFunction(() => document.fullscreenElement?.classList.contains('desktop-view') === true);
      await page.getByRole('button', { name: 'Exit fullscreen' }).click();
      await page.waitForFunction(() => document.fullscreenElement === null);
      expect(await page.getByTestId('desktop-state').innerText()).toBe('connected');
    });

    it(
      'typed keys reach the guest: an address typed into Firefox is requested from this host, character for character',
      async () => {
        const recorder = await recordPaths(GATEWAY);
        if (mode === 'web') await startKeyRecording(page);
        try {
          // Keyboard focus on noVNC's canvas (as a click on the screen would give it), then Firefox's address bar.
          await page.locator(CANVAS).focus();
          await page.keyboard.press('Control+l');
          // One key first, shown as Firefox's highlighted suggestion: the address bar has its focus. Under TCG it
          // selects its text asynchronously after Ctrl+L; the probe key absorbs that, and Backspace removes it.
          await page.keyboard.type('x');
          await waitForCanvas(page, 'the first typed key in the address bar', { minHighlightShare: 0.005 }, 120_000);
          await page.keyboard.press('Backspace');
          // Mixed case, digits and punctuation: shifted and unshifted keysyms, in order.
          const nonce = `Fd-${randomBytes(6).toString('hex')}_Q9`;
          await page.keyboard.type(`http://${GATEWAY}:${recorder.port}/typed/${nonce}?k=Z`, { delay: 20 });
          // Enter goes to the suggestion Firefox shows; wait until it has caught up with the typing (the image
          // turns the caret's blinking off, so a still screen means Firefox is done).
          await waitForStillCanvas(page, 'the typed address in the address bar', 2_000, 180_000);
          await page.keyboard.press('Enter');
          const requested = await recorder.waitFor('/typed/', 120_000).catch(async (err: Error) => {
            // Where the keys were lost: before they left the page, or in the guest.
            throw new Error(`${err.message}; the page sent these key presses: ${await recordedKeys(page)}`);
          });
          expect(requested).toBe(`/typed/${nonce}?k=Z`);
        } finally {
          // What the guest showed at the end, passed or not.
          await page
            .locator(CANVAS)
            .screenshot({ path: path.join(REPO_ROOT, 'test-results/e2e-desktop-typed.png') })
            .catch(() => undefined);
          await recorder.close();
        }
      },
      BOOT_TIMEOUT_MS,
    );

    it(
      "clipboard paste reaches the guest: text pasted from the app lands in Firefox's address bar with Ctrl+V",
      async () => {
        const recorder = await recordPaths(GATEWAY);
        try {
          const nonce = `Clip-${randomBytes(6).toString('hex')}`;
          await page
            .getByRole('textbox', { name: 'Clipboard text' })
            .fill(`http://${GATEWAY}:${recorder.port}/pasted/${nonce}`);
          await page.getByRole('button', { name: 'Paste', exact: true }).click();
          expect(await page.getByRole('textbox', { name: 'Clipboard text' }).inputValue()).toBe('');
          await page.locator(CANVAS).focus();
          await page.keyboard.press('Control+l');
          await page.keyboard.type('x');
          await waitForCanvas(page, 'the probe key in the address bar', { minHighlightShare: 0.005 }, 120_000);
          await page.keyboard.press('Backspace');
          await page.keyboard.press('Control+v');
          await waitForStillCanvas(page, 'the pasted address in the address bar', 2_000, 180_000);
          await page.keyboard.press('Enter');
          expect(await recorder.waitFor('/pasted/', 120_000)).toBe(`/pasted/${nonce}`);
        } finally {
          await page
            .locator(CANVAS)
            .screenshot({ path: path.join(REPO_ROOT, 'test-results/e2e-desktop-pasted.png') })
            .catch(() => undefined);
          await recorder.close();
        }
      },
      BOOT_TIMEOUT_MS,
    );
  },
);
