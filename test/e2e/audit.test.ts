import fs from 'node:fs';
import path from 'node:path';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AuditEntry } from '../../src/shared/protocol/audit';
import type { DaemonRig } from '../rig/daemon';
import { installTestImage } from '../rig/testImage';
import { startSshStack, type SshStack } from './support/sshStack';
import { confirmDialog } from './support/ui';
import { REPO_ROOT } from './support/webMode';

const PREFIX = 'fdt6a';

describe('the audit view (web) against a real daemon, through the rig sshd', () => {
  let daemon: DaemonRig;
  let page: Page;
  let stack: SshStack | undefined;

  beforeAll(async () => {
    stack = await startSshStack({
      mode: 'web',
      prefix: PREFIX,
      cidr: '10.213.66.0/24',
      installImages: installTestImage,
    });
    ({ daemon, page } = stack);
  });

  afterAll(async () => {
    await stack?.stop();
  });

  it('shows a destroy made in the app with the OS user the daemon saw, filtered by method, and exports it', async () => {
    // A VM that is never started: what is audited here is the app's call, not a boot.
    const vm = await daemon.call('vm.create', {
      name: 'audit-a',
      kind: 'cli',
      owner: 'ops@example.org',
      image: 'test',
      start: false,
    });
    await page.getByRole('button', { name: 'Fleet' }).click();
    const row = page.getByTestId('vm-row-audit-a');
    await row.waitFor({ timeout: 30_000 });
    await row.getByRole('button', { name: 'Destroy' }).click();
    await confirmDialog(page, /^Destroy audit-a on rig\?$/, 'Destroy');
    await row.waitFor({ state: 'detached', timeout: 120_000 });

    await page.getByRole('button', { name: 'Audit' }).click();
    await page.getByTestId('audit-table').waitFor({ timeout: 30_000 });
    await page.getByLabel('Filter by method').fill('vm.destroy');
    await page.getByRole('button', { name: 'Apply' }).click();
    await page
      .getByTestId('audit-count')
      .filter({ hasText: /^1 entry$/ })
      .waitFor({ timeout: 30_000 });
    const shown = page.locator('tr.audit-row');
    expect(await shown.count()).toBe(1);
    // The call came over SSH as the rig's login user: the daemon names it from the kernel, root here.
    expect(await shown.getByTestId('audit-method').innerText()).toBe('vm.destroy');
    expect(await shown.getByTestId('audit-user').innerText()).toBe('root (0)');
    expect(await shown.innerText()).toContain(`audit-a (${vm.id})`);
    expect(await shown.innerText()).toContain('ok');

    // The view's answer is the daemon's own: the same row through the rig's client.
    const direct = await daemon.call('audit.list', { method: 'vm.destroy' });
    expect(direct.entries.map((e) => e.vmId)).toEqual([vm.id]);

    const download = page.waitForEvent('download');
    await page.getByRole('button', { name: 'Export JSON lines' }).click();
    const file = await (await download).path();
    expect((await download).suggestedFilename()).toMatch(/^firedeck-audit-rig-.*\.jsonl$/);
    const lines = fs.readFileSync(file, 'utf8').split('\n');
    expect(lines.pop()).toBe('');
    const exported = lines.map((l) => AuditEntry.parse(JSON.parse(l)));
    expect(exported).toHaveLength(1);
    expect(exported[0]).toMatchObject({ method: 'vm.destroy', user: 'root', uid: 0, vmId: vm.id, ok: true });

    // Without the filter the create (by the rig's own client) is there too, newest first.
    await page.getByLabel('Filter by method').fill('vm.*');
    await page.getByRole('button', { name: 'Apply' }).click();
    await page
      .getByTestId('audit-count')
      .filter({ hasText: /^2 entries$/ })
      .waitFor({ timeout: 30_000 });
    expect(await page.locator('tr.audit-row [data-testid="audit-method"]').allInnerTexts()).toEqual([
      'vm.destroy',
      'vm.create',
    ]);
    await page.screenshot({ path: path.join(REPO_ROOT, 'test-results/e2e-audit.png'), fullPage: true });
  }, 300_000);
});
