import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Vm } from '../../src/shared/protocol/vm';
import { callDaemon, type DaemonRig } from '../rig/daemon';
import { installGoldenImages } from '../rig/goldenImages';
import { freePort } from '../rig/tmp';
import { appModes, type AppUnderTest } from './support/app';
import {
  CANVAS,
  desktopSizes,
  startGuestTarget,
  submittedText,
  waitForCanvas,
  waitForScreenFollowing,
  type GuestTarget,
} from './support/guestDesktop';
import { recordedKeys, startKeyRecording } from './support/rfbKeys';
import { startSshStack, type SshStack } from './support/sshStack';
import { REPO_ROOT } from './support/webMode';

const PREFIX = 'fdt5d';
const CIDR = '10.213.58.0/24';
/** The host's side of the VMs' bridge (the subnet's gateway), where the guest's Firefox can reach this test. */
const GATEWAY = '10.213.58.1';
/** A browser VM (systemd, Xvnc, openbox, Firefox) booting under TCG on a busy two-core machine. */
const BOOT_TIMEOUT_MS = 900_000;
/** One step in the guest (a page load, a submitted form) under TCG while other suites load the machine. */
const GUEST_STEP_MS = 120_000;

describe.each(appModes())(
  'the desktop (%s) of a real browser VM (Xvnc, openbox, Firefox) through firedeckd vnc over SSH',
  (mode) => {
    let stack: SshStack | undefined;
    let daemon: DaemonRig;
    let app: AppUnderTest;
    let page: Page;
    let vm: Vm;
    let target: GuestTarget | undefined;

    beforeAll(async () => {
      // The daemon isolates guests from the host: the guest's Firefox may open only this test's web target.
      const targetPort = await freePort();
      stack = await startSshStack({
        mode,
        prefix: PREFIX,
        cidr: CIDR,
        env: { FIREDECK_GUEST_ALLOW: `${GATEWAY}:${targetPort}/tcp` },
        // The golden browser image as the pipeline builds it (reused from the cache when the recipe is unchanged).
        installImages: (stateDir) => installGoldenImages(stateDir, ['browser']),
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
      // Its address is the bridge's, which exists now that a VM is on it.
      target = await startGuestTarget(GATEWAY, targetPort);
    }, BOOT_TIMEOUT_MS + 1_200_000);

    afterAll(async () => {
      await target?.close();
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

        // Firefox's window shows on the guest's screen, which has taken the panel's size: the guest's Xvnc
        // starts at 1280×800, more than the panel has in a 1280×800 window (header, tabs and toolbar take room).
        const shown = await waitForCanvas(page, "Firefox's window on the desktop", { minLightShare: 0.2 }, 600_000);
        const sizes = await waitForScreenFollowing(page, 'the desktop as it opened', GUEST_STEP_MS);
        expect(sizes.framebuffer.height).toBeLessThan(800);
        expect(sizes.shown).toEqual(sizes.framebuffer);
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

    it(
      "the guest's screen follows the panel as the window is resized: noVNC's canvas and the guest's own Firefox say so",
      async () => {
        await target!.openLobby(page);
        const followed = async (width: number, height: number): Promise<void> => {
          await app.resize(width, height);
          const sizes = await waitForScreenFollowing(page, `the window at ${width}×${height}`, GUEST_STEP_MS);
          // Shown 1:1: nothing is scaled and nothing scrolls.
          expect(sizes.shown).toEqual(sizes.framebuffer);
          await target!.waitForGuestScreen(sizes.framebuffer.width, sizes.framebuffer.height, GUEST_STEP_MS);
        };
        const before = await desktopSizes(page);
        await followed(1000, 700);
        // Larger than the guest's start-up geometry (1280×800) in both directions.
        await followed(1600, 1100);
        expect((await desktopSizes(page)).framebuffer.width).toBeGreaterThan(1280);
        await followed(1280, 800);
        expect((await desktopSizes(page)).framebuffer).toEqual(before.framebuffer);
        fs.mkdirSync(path.join(REPO_ROOT, 'test-results'), { recursive: true });
        await page.screenshot({ path: path.join(REPO_ROOT, 'test-results/e2e-desktop-fill.png') });
        expect(await page.getByTestId('desktop-state').innerText()).toBe('connected');
      },
      BOOT_TIMEOUT_MS,
    );

    it('keeps the guest screen as it is, 1:1 or scaled to fit, and fills the panel again', async () => {
      const fit = (name: string) => page.getByRole('radio', { name, exact: true });
      await fit('1:1').check();
      // The window shrinks; the guest's screen does not follow now and is shown 1:1, bigger than the panel.
      const kept = (await desktopSizes(page)).framebuffer;
      await app.resize(1000, 700);
      await page.waitForFunction(
        ({ selector, width }) =>
          Math.floor(document.querySelector(selector)!.parentElement!.getBoundingClientRect().width) < width,
        { selector: CANVAS, width: kept.width },
      );
      const native = await desktopSizes(page);
      expect(native.framebuffer).toEqual(kept);
      expect(native.shown).toEqual(kept);
      expect(native.panel.width).toBeLessThan(kept.width);

      // Scaled to fit: the same framebuffer, drawn within the panel.
      await fit('scale to fit').check();
      await page.waitForFunction((selector) => {
        const canvas = document.querySelector<HTMLCanvasElement>(selector)!;
        const panel = canvas.parentElement!.getBoundingClientRect();
        const box = canvas.getBoundingClientRect();
        return box.width <= panel.width + 1 && box.height <= panel.height + 1 && box.width < canvas.width;
      }, CANVAS);
      expect((await desktopSizes(page)).framebuffer).toEqual(kept);

      // Filling the panel again resizes the guest to it.
      await fit('fill the panel').check();
      await waitForScreenFollowing(page, 'fill the panel, chosen again', GUEST_STEP_MS);
      await app.resize(1280, 800);
      const back = await waitForScreenFollowing(page, 'the window at 1280×800 again', GUEST_STEP_MS);
      expect(back.framebuffer).toEqual(kept);
      // Changing the fit does not reconnect.
      expect(await page.getByTestId('desktop-state').innerText()).toBe('connected');

      // Fullscreen shows the desktop view alone, the guest's screen filling it, and goes back.
      await page.getByRole('button', { name: 'Fullscreen' }).click();
      await page.waitForFunction(() => document.fullscreenElement?.classList.contains('desktop-view') === true);
      await waitForScreenFollowing(page, 'fullscreen', GUEST_STEP_MS);
      await page.getByRole('button', { name: 'Exit fullscreen' }).click();
      await page.waitForFunction(() => document.fullscreenElement === null);
      await waitForScreenFollowing(page, 'fullscreen left', GUEST_STEP_MS);
      expect(await page.getByTestId('desktop-state').innerText()).toBe('connected');
    });

    it(
      'typed keys reach the guest: text typed into a page in Firefox is submitted to this host, character for character',
      async () => {
        if (mode === 'web') await startKeyRecording(page);
        try {
          await target!.openLobby(page);
          await target!.show(page, 'typed');
          // Mixed case, digits, a space and punctuation: shifted and unshifted keysyms, in order.
          const text = `Fd-${randomBytes(6).toString('hex')} Q9?k=Z&x/y:`;
          await page.keyboard.type(text, { delay: 20 });
          await page.keyboard.press('Enter');
          const submitted = await target!.waitFor('/typed?', GUEST_STEP_MS).catch(async (err: Error) => {
            // Where keys were lost: before they left the page (web mode records them), or in the guest.
            throw new Error(`${err.message}; the page sent these key presses: ${await recordedKeys(page)}`);
          });
          expect(submittedText(submitted)).toBe(text);
        } finally {
          // What the guest showed at the end, passed or not.
          await page
            .locator(CANVAS)
            .screenshot({ path: path.join(REPO_ROOT, 'test-results/e2e-desktop-typed.png') })
            .catch(() => undefined);
        }
      },
      BOOT_TIMEOUT_MS,
    );

    it(
      'clipboard paste reaches the guest: text pasted from the app lands in a page in Firefox with Ctrl+V',
      async () => {
        try {
          await target!.openLobby(page);
          await target!.show(page, 'pasted');
          const text = `Clip-${randomBytes(6).toString('hex')} ünïcode ✓`;
          const clipboard = page.getByRole('textbox', { name: 'Clipboard text' });
          await clipboard.fill(text);
          await page.getByRole('button', { name: 'Paste', exact: true }).click();
          expect(await clipboard.inputValue()).toBe('');
          await page.locator(CANVAS).focus();
          await page.keyboard.press('Control+v');
          await page.keyboard.press('Enter');
          expect(submittedText(await target!.waitFor('/pasted?', GUEST_STEP_MS))).toBe(text);
        } finally {
          await page
            .locator(CANVAS)
            .screenshot({ path: path.join(REPO_ROOT, 'test-results/e2e-desktop-pasted.png') })
            .catch(() => undefined);
        }
      },
      BOOT_TIMEOUT_MS,
    );
  },
);
