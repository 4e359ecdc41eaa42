import fs from 'node:fs';
import path from 'node:path';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DaemonRig } from '../rig/daemon';
import { installTestImage } from '../rig/testImage';
import { appModes } from './support/app';
import { startSshStack, type SshStack } from './support/sshStack';
import { confirmDialog } from './support/ui';
import { REPO_ROOT } from './support/webMode';

const PREFIX = 'fdt7c';
/** Boots a guest under TCG on a busy two-core machine. */
const BOOT_TEST_TIMEOUT = 480_000;

describe.each(appModes())(
  'create a VM from the fleet (%s), real daemon and QEMU guest through the rig sshd',
  (mode) => {
    let daemon: DaemonRig;
    let page: Page;
    let stack: SshStack | undefined;
    const shot = (name: string) =>
      page.screenshot({ path: path.join(REPO_ROOT, `test-results/e2e-create-${name}.png`) });

    beforeAll(async () => {
      stack = await startSshStack({ mode, prefix: PREFIX, cidr: '10.213.67.0/24', installImages: installTestImage });
      ({ daemon, page } = stack);
      fs.mkdirSync(path.join(REPO_ROOT, 'test-results'), { recursive: true });
    });

    afterAll(async () => {
      await stack?.stop();
    });

    it("opens the form with the name focused and the host's limits shown; Escape closes it, keeping what was typed", async () => {
      await page.getByRole('button', { name: 'Fleet' }).click();
      await page.getByTestId('fleet-count').filter({ hasText: '0 of 0 VMs' }).waitFor();
      await page.getByRole('button', { name: 'Create VM' }).click();
      const form = page.getByRole('form', { name: 'Create VM' });
      await form.waitFor();
      expect(await page.evaluate(() => document.activeElement?.getAttribute('name'))).toBe('name');
      await form
        .getByTestId('create-vm-limits')
        .filter({ hasText: /^rig: Memory: .* free of .* · Disk: / })
        .waitFor();

      // The figures are the daemon's: its free memory (MemAvailable) moves a little between two reads.
      const info = await daemon.call('daemon.info', {});
      const memoryNote = await form.locator('label', { hasText: 'Memory (MiB)' }).locator('.field-note').innerText();
      const freeMib = Number(/^(\d+) MiB free$/.exec(memoryNote)![1]);
      expect(Math.abs(freeMib - info.resources!.memoryAvailableBytes / 2 ** 20)).toBeLessThan(512);
      expect(await form.getByTestId('create-vm-limits').innerText()).toContain(`in ${daemon.stateDir}`);
      // The test image is the only one published: it is picked, its minimum disk is its root file system.
      expect(await form.locator('select[name=image]').inputValue()).toBe('test');
      const image = (await daemon.call('image.list', {})).find((v) => v.name === 'test' && v.current)!;
      const minDiskMib = Math.ceil(image.rootfsBytes / 2 ** 20);
      await form.getByText(`needs ≥ ${minDiskMib} MiB disk`).waitFor();
      await expect(form.locator('select[name=image] option').allInnerTexts()).resolves.toEqual([
        `test (current: ${image.version})`,
        `test@${image.version}`,
      ]);
      await shot('limits');

      await form.locator('input[name=name]').fill('create-a');
      await page.keyboard.press('Escape');
      await form.waitFor({ state: 'detached' });
      await page.getByRole('button', { name: 'Create VM' }).click();
      expect(await form.locator('input[name=name]').inputValue()).toBe('create-a');
    });

    it('shows what is wrong beside the field, with the fix, and sends nothing until it is fixed', async () => {
      const form = page.getByRole('form', { name: 'Create VM' });
      await form.locator('input[name=owner]').fill('ops@example.org');
      const info = await daemon.call('daemon.info', {});
      const tooMuch = Math.floor(info.resources!.memoryAvailableBytes / 2 ** 20) + 4096;
      await form.locator('input[name=memoryMib]').fill(String(tooMuch));
      const image = (await daemon.call('image.list', {})).find((v) => v.name === 'test' && v.current)!;
      const minDiskMib = Math.ceil(image.rootfsBytes / 2 ** 20);
      await form.locator('input[name=diskMib]').fill(String(minDiskMib - 1));
      // Enter submits: the checks refuse it, and the daemon is never asked.
      await form.locator('input[name=diskMib]').press('Enter');
      const memoryError = form.getByTestId('create-vm-memoryMib-error');
      await memoryError.waitFor();
      expect(await memoryError.innerText()).toMatch(/^Only (\d+) MiB free on rig: ask for at most \1 MiB\.$/);
      expect(await form.getByTestId('create-vm-diskMib-error').innerText()).toBe(
        `The image test needs at least ${minDiskMib} MiB: ask for ${minDiskMib} MiB or more.`,
      );
      expect(await form.getByTestId('create-vm-problems').innerText()).toBe('2 fields to fix before creating');
      // The first field in error takes the focus.
      expect(await page.evaluate(() => document.activeElement?.getAttribute('name'))).toBe('memoryMib');
      await shot('invalid');
      expect(await daemon.call('vm.list', {})).toEqual([]);

      await form.locator('input[name=memoryMib]').fill('256');
      await form.locator('input[name=diskMib]').fill(String(Math.max(minDiskMib, 2048)));
      await form.locator('select[name=driver]').selectOption('qemu');
      expect(await form.getByTestId('create-vm-memoryMib-error').count()).toBe(0);
      expect(await form.getByTestId('create-vm-diskMib-error').count()).toBe(0);
    });

    it(
      'creates it: the row appears at once in creating, moves on by events to running with its readiness markers',
      async () => {
        const form = page.getByRole('form', { name: 'Create VM' });
        // Every state the row shows, frame by frame, from before the submit.
        await page.evaluate(() => {
          const seen: string[] = [];
          (window as unknown as { createStates: string[] }).createStates = seen;
          const tick = (): void => {
            const text = document.querySelector(
              '[data-testid="vm-row-create-a"] [data-testid="vm-state"]',
            )?.textContent;
            if (text && seen[seen.length - 1] !== text) seen.push(text);
            if (text !== 'running') requestAnimationFrame(tick);
          };
          requestAnimationFrame(tick);
        });
        await form.locator('input[name=name]').press('Enter');
        const row = page.getByTestId('vm-row-create-a');
        await row.waitFor({ timeout: 30_000 });
        await shot('creating');
        // vm.create answers once the guest boots: the form closes and says so (checked before the toast fades).
        await form.waitFor({ state: 'detached', timeout: 120_000 });
        await page
          .getByRole('status')
          .filter({ hasText: /^create-a: created \(/ })
          .waitFor();
        await row
          .getByTestId('vm-state')
          .filter({ hasText: /^running$/ })
          .waitFor({ timeout: 300_000 });
        const states = await page.evaluate(() => (window as unknown as { createStates: string[] }).createStates);
        expect(states[0]).toBe('creating');
        expect(states).toContain('booting');
        expect(states[states.length - 1]).toBe('running');
        expect(await row.innerText()).toContain('ops@example.org');

        const vm = (await daemon.call('vm.list', {})).find((v) => v.name === 'create-a')!;
        expect(vm).toMatchObject({ kind: 'cli', owner: 'ops@example.org', driver: 'qemu', memoryMib: 256 });
        expect(vm.image).toMatch(/^test@/);
        await row.getByRole('button', { name: 'create-a' }).click();
        await page
          .getByTestId('vm-title')
          .filter({ hasText: /^create-a$/ })
          .waitFor();
        await page.getByText(/ready: (vm, sshd|sshd, vm)$/).waitFor({ timeout: 120_000 });
        await shot('running');
        await page.getByRole('button', { name: '← Fleet' }).click();
      },
      BOOT_TEST_TIMEOUT,
    );

    it('refuses a name the host already has, before asking the daemon', async () => {
      await page.getByRole('button', { name: 'Create VM' }).click();
      const form = page.getByRole('form', { name: 'Create VM' });
      await form.waitFor();
      await form.locator('input[name=name]').fill('create-a');
      await form.locator('input[name=name]').press('Enter');
      expect(await form.getByTestId('create-vm-name-error').innerText()).toBe(
        'rig already has a VM named create-a: pick another name.',
      );
      await page.keyboard.press('Escape');
      await form.waitFor({ state: 'detached' });
    });

    it('destroys it from the app', async () => {
      const row = page.getByTestId('vm-row-create-a');
      await row.getByRole('button', { name: 'Destroy' }).click();
      await confirmDialog(page, /^Destroy create-a on rig\?$/, 'Destroy');
      await row.waitFor({ state: 'detached', timeout: 120_000 });
      await page.getByTestId('fleet-count').filter({ hasText: '0 of 0 VMs' }).waitFor();
      expect(await daemon.call('vm.list', {})).toEqual([]);
      await shot('destroyed');
    });
  },
);
