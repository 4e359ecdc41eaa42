import type { Page } from 'playwright-core';
import type { Sshd } from '../../rig/sshd';

/** Fills the hosts view's form for the rig's sshd and submits it. */
export async function addSshHost(page: Page, sshd: Sshd, name: string): Promise<void> {
  const form = page.getByRole('form', { name: 'Add host' });
  await form.locator('input[name=name]').fill(name);
  await form.locator('input[name=address]').fill(sshd.host);
  await form.locator('input[name=port]').fill(String(sshd.port));
  await form.locator('input[name=user]').fill(sshd.user);
  await form.locator('select[name=auth]').selectOption('keyFile');
  await form.locator('input[name=keyPath]').fill(sshd.clientKeyPath);
  await form.getByRole('button', { name: 'Add host' }).click();
  await page.getByTestId(`host-row-${name}`).waitFor();
}

/** Connects a host whose key is not pinned yet, checks the fingerprint shown, trusts it, waits for "connected". */
export async function trustAndConnect(page: Page, name: string, fingerprint: string): Promise<string> {
  const row = page.getByTestId(`host-row-${name}`);
  await row.getByRole('button', { name: 'Connect' }).click();
  const dialog = page.getByRole('dialog');
  await dialog.waitFor();
  const shown = await page.getByTestId('trust-fingerprint').innerText();
  if (!shown.includes(fingerprint)) throw new Error(`trust dialog shows ${shown}, expected ${fingerprint}`);
  await dialog.getByRole('button', { name: 'Trust and connect' }).click();
  await row.locator('.pill', { hasText: /^connected$/ }).waitFor({ timeout: 30_000 });
  return shown;
}

/** Answers the app's confirmation dialog whose title matches, with the button named `answer`. */
export async function confirmDialog(page: Page, title: RegExp, answer: string): Promise<void> {
  const dialog = page.getByRole('dialog').filter({ has: page.getByRole('heading', { name: title }) });
  await dialog.waitFor({ timeout: 10_000 });
  await dialog.getByRole('button', { name: answer, exact: true }).click();
  await dialog.waitFor({ state: 'detached', timeout: 10_000 });
}
