import fs from 'node:fs';
import path from 'node:path';
import type { Locator, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ImageManifest } from '../../src/shared/protocol/image';
import type { DaemonRig } from '../rig/daemon';
import { startSshStack, type SshStack } from './support/sshStack';
import { confirmDialog } from './support/ui';
import { REPO_ROOT } from './support/webMode';

const PREFIX = 'fdt8i';
const shot = (page: Page, name: string) =>
  page.screenshot({ path: path.join(REPO_ROOT, `test-results/e2e-images-${name}.png`), fullPage: true });

/** The step a build card shows as running (its `data-step`), or null when none is. */
async function activeStep(card: Locator): Promise<string | null> {
  const active = card.locator('.build-step.step-active');
  return (await active.count()) === 0 ? null : active.getAttribute('data-step');
}

/** How many lines a build card says its log has had in all ("Log (N lines…"). */
async function logCount(card: Locator): Promise<number> {
  const text = await card.locator('summary').first().innerText();
  return Number(/Log \((\d+) lines/.exec(text)?.[1] ?? NaN);
}

/**
 * Older versions of `test` beside the one the app built, for rollback and gc: the built version's files
 * hard-linked (versions are immutable, so sharing their inodes is safe) under a manifest of an older build.
 */
function plantOlderVersions(stateDir: string, built: string, days: string[]): string[] {
  const parent = path.join(stateDir, 'images', 'test');
  const manifest = ImageManifest.parse(JSON.parse(fs.readFileSync(path.join(parent, built, 'manifest.json'), 'utf8')));
  return days.map((day) => {
    const version = `202612${day}T000000-${manifest.recipeHash.slice(0, 12)}`;
    const staging = path.join(parent, `.staging-${version}`);
    fs.mkdirSync(staging);
    for (const file of ['rootfs.ext4', 'vmlinuz', 'initrd.img']) {
      fs.linkSync(path.join(parent, built, file), path.join(staging, file));
    }
    const older = { ...manifest, version, builtAt: `2026-12-${day}T00:00:00.000Z` };
    fs.writeFileSync(path.join(staging, 'manifest.json'), JSON.stringify(older));
    fs.renameSync(staging, path.join(parent, version));
    return version;
  });
}

describe('the images view (web) against a real daemon, through the rig sshd', () => {
  let daemon: DaemonRig;
  let page: Page;
  let stack: SshStack | undefined;

  beforeAll(async () => {
    // An empty catalog: the app builds the first version itself.
    stack = await startSshStack({ mode: 'web', prefix: PREFIX, cidr: '10.213.68.0/24', installImages: async () => [] });
    ({ daemon, page } = stack);
  });

  afterAll(async () => {
    await stack?.stop();
  });

  it(
    'builds the test image with progress by step and its log, through a page reload in the boot test',
    async () => {
      await page.keyboard.press('Alt+6');
      const host = page.locator('.host-images');
      await host.getByText('No golden images on rig yet').waitFor({ timeout: 30_000 });
      await host.getByLabel('Recipe').fill('test');
      await host.getByRole('button', { name: 'Build', exact: true }).click();

      const card = page.locator('.build-card').first();
      await card
        .getByTestId('build-status')
        .filter({ hasText: /^running$/ })
        .waitFor({ timeout: 30_000 });
      const buildId = (await card.getAttribute('data-testid'))!.replace(/^build-/, '');
      // Steps go by in order; the log streams meanwhile.
      const seen: string[] = [];
      const deadline = Date.now() + 20 * 60_000;
      while (Date.now() < deadline) {
        const step = await activeStep(card);
        if (step !== null && seen.at(-1) !== step) seen.push(step);
        if (step === 'boot-test') break;
        if ((await card.getByTestId('build-status').innerText()) !== 'running') break;
        await card
          .locator('.build-step.step-active:not([data-step="' + (step ?? '') + '"])')
          .waitFor({ timeout: 5000 })
          .catch(() => undefined);
      }
      expect(seen.at(-1)).toBe('boot-test');
      const order = ['base', 'npm', 'files', 'checks', 'rootfs', 'boot-test'];
      expect(seen.map((s) => order.indexOf(s))).toEqual([...seen.map((s) => order.indexOf(s))].sort((a, b) => a - b));
      expect(await card.locator('.build-step.step-done').allInnerTexts()).toEqual(
        expect.arrayContaining(['base', 'rootfs']),
      );
      const logBefore = await card.getByTestId('build-log').innerText();
      expect(logBefore.length).toBeGreaterThan(0);
      const linesBefore = await logCount(card);
      expect(linesBefore).toBeGreaterThan(0);
      await shot(page, 'building');

      // The page goes away and comes back mid-build: the daemon still runs it and the view finds it again.
      await page.reload();
      await page
        .getByTestId('connection-status')
        .filter({ hasText: /^connected to / })
        .waitFor({ timeout: 30_000 });
      await page.keyboard.press('Alt+6');
      const again = page.getByTestId(`build-${buildId}`);
      await again.waitFor({ timeout: 30_000 });
      expect(await again.getByTestId('build-status').innerText()).toBe('running');
      // Still booting its test VM (or publishing, if the boot test ended during the reload).
      expect(['boot-test', 'publish']).toContain(await activeStep(again));
      // A fresh page knows the build's log only from the daemon (image.builds): its count of lines goes on from
      // where the page was before the reload, with the newest lines shown.
      const logAfter = await again.getByTestId('build-log').innerText();
      expect(logAfter.trim().length).toBeGreaterThan(0);
      expect(await logCount(again)).toBeGreaterThanOrEqual(linesBefore);
      await shot(page, 'reopened');

      await again
        .getByTestId('build-status')
        .filter({ hasText: /^succeeded$/ })
        .waitFor({ timeout: 10 * 60_000 });
      expect(await again.locator('.build-step.step-done').count()).toBe(7);
      const [built] = await daemon.call('image.list', { name: 'test' });
      expect(built).toMatchObject({ current: true });
      const row = page.getByTestId(`version-${built!.version}`);
      await row.waitFor({ timeout: 30_000 });
      expect(await row.getByTestId('current').count()).toBe(1);
      expect(await row.getByTestId('boot-test').innerText()).toMatch(/^passed \d+ s \(.+\)$/);
      expect(built!.bootTest).not.toBeNull();
      await row.locator('summary', { hasText: 'manifest' }).click();
      expect(await row.innerText()).toContain(built!.rootfsSha256);
      await shot(page, 'built');
    },
    30 * 60_000,
  );

  it('rolls back, promotes, and collects only after showing what it will remove', async () => {
    const [built] = await daemon.call('image.list', { name: 'test' });
    const older = plantOlderVersions(daemon.stateDir, built!.version, ['01', '02', '03']);
    await daemon.call('vm.create', {
      name: 'pinned-a',
      kind: 'cli',
      owner: 'ops@example.org',
      image: `test@${built!.version}`,
      start: false,
    });
    await page.getByRole('button', { name: 'Refresh' }).click();
    const versions = page.getByTestId('image-test');
    await versions.getByTestId(`version-${older[0]!}`).waitFor({ timeout: 30_000 });
    expect(await versions.getByTestId(`version-${built!.version}`).getByTestId('pinned-by').innerText()).toBe(
      'pinned-a',
    );

    await versions.getByRole('button', { name: 'Roll back' }).click();
    await versions.getByTestId(`version-${older[2]!}`).getByTestId('current').waitFor({ timeout: 30_000 });
    expect((await daemon.call('image.list', { name: 'test' })).find((v) => v.current)?.version).toBe(older[2]);

    await versions.getByTestId(`version-${built!.version}`).getByRole('button', { name: 'Promote' }).click();
    await versions.getByTestId(`version-${built!.version}`).getByTestId('current').waitFor({ timeout: 30_000 });

    // gc keeps the current version and the two before it: the oldest planted one goes, after the operator saw it.
    await versions.getByRole('button', { name: 'Collect old versions…' }).click();
    const dialog = page.getByRole('dialog');
    await dialog.waitFor({ timeout: 30_000 });
    const text = await dialog.innerText();
    expect(text).toContain(`test@${older[0]!}`);
    expect(text).not.toContain(`test@${older[1]!}`);
    expect(text).not.toContain(`test@${built!.version}`);
    await shot(page, 'gc-confirm');
    // Declined first: nothing is removed.
    await confirmDialog(page, /^Collect 1 old image item\?$/, 'Cancel');
    expect((await daemon.call('image.list', { name: 'test' })).map((v) => v.version)).toContain(older[0]);
    await versions.getByRole('button', { name: 'Collect old versions…' }).click();
    await confirmDialog(page, /^Collect 1 old image item\?$/, 'Remove them');
    await versions.getByTestId(`version-${older[0]!}`).waitFor({ state: 'detached', timeout: 30_000 });
    expect((await daemon.call('image.list', { name: 'test' })).map((v) => v.version).sort()).toEqual(
      [older[1]!, older[2]!, built!.version].sort(),
    );
    await shot(page, 'after-gc');
  }, 300_000);
});
