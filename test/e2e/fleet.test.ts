import { execFile, execFileSync } from 'node:child_process';
import { promisify } from 'node:util';
import fs from 'node:fs';
import path from 'node:path';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Vm } from '../../src/shared/protocol/vm';
import type { DaemonRig } from '../rig/daemon';
import type { Sshd } from '../rig/sshd';
import { installTestImage } from '../rig/testImage';
import { appModes } from './support/app';
import { startSshStack, type SshStack } from './support/sshStack';
import { confirmDialog } from './support/ui';
import { REPO_ROOT } from './support/webMode';

const PREFIX = 'fdt5e';
const run = promisify(execFile);
/** Tests that wait for a guest to boot under TCG on a busy machine. */
const BOOT_TEST_TIMEOUT = 480_000;

describe.each(appModes())('fleet and VM detail (%s) against real QEMU guests, through the rig sshd', (mode) => {
  let daemon: DaemonRig;
  let sshd: Sshd;
  let page: Page;
  let stack: SshStack | undefined;

  beforeAll(async () => {
    // No local host here: every call in this suite goes through SSH.
    stack = await startSshStack({ mode, prefix: PREFIX, cidr: '10.213.50.0/24', installImages: installTestImage });
    ({ daemon, sshd, page } = stack);
  });

  afterAll(async () => {
    await stack?.stop();
  });

  it(
    'shows a VM created elsewhere within a second, live through its boot',
    async () => {
      await page.getByRole('button', { name: 'Fleet' }).click();
      await page.getByTestId('fleet-count').filter({ hasText: '0 of 0 VMs' }).waitFor();
      // "Elsewhere": the host's own CLI, not the app. The row must show up as soon as the daemon announces the VM,
      // which is before the command returns (it still prepares the disk and boots).
      const cli = run(daemon.firedeckdCommand, [
        'vm',
        'create',
        '--name',
        'fleet-a',
        '--kind',
        'cli',
        '--owner',
        'ops@example.org',
        '--image',
        'test',
        '--json',
      ]);
      const row = page.getByTestId('vm-row-fleet-a');
      // The page's own clock at the first frame that shows the row (polling per frame, not Playwright's backoff).
      const seen = await page.waitForFunction(
        () => (document.querySelector('[data-testid="vm-row-fleet-a"]') ? Date.now() : null),
        null,
        { polling: 'raf', timeout: 30_000 },
      );
      const seenAt = (await seen.jsonValue())!;
      const { stdout } = await cli;
      const created = JSON.parse(stdout) as Vm;
      expect(seenAt - Date.parse(created.createdAt)).toBeLessThan(1000);
      expect(await row.innerText()).toContain('ops@example.org');
      await row
        .getByTestId('vm-state')
        .filter({ hasText: /^running$/ })
        .waitFor({ timeout: 300_000 });
    },
    BOOT_TEST_TIMEOUT,
  );

  it("shows a running VM's CPU and memory as the daemon samples them", async () => {
    const row = page.getByTestId('vm-row-fleet-a');
    // The daemon samples every 2 s and a VM's first reading is only a baseline: allow a few ticks under load.
    const memory = row.getByTestId('vm-memory-live').filter({ hasText: /^\d+ MiB$/ });
    await memory.waitFor({ timeout: 30_000 });
    expect(Number(/^(\d+) MiB$/.exec(await memory.innerText())![1])).toBeGreaterThan(0);
    await row
      .getByTestId('vm-cpu-live')
      .filter({ hasText: /^\d+(\.\d)?%$/ })
      .waitFor({ timeout: 10_000 });
    expect(await row.getByTestId('vm-memory').locator('svg.sparkline path').getAttribute('d')).toMatch(/^M/);
    fs.mkdirSync(path.join(REPO_ROOT, 'test-results'), { recursive: true });
    await page.screenshot({ path: path.join(REPO_ROOT, 'test-results/e2e-fleet-usage.png') });

    const vm = (await daemon.call('vm.list', {})).find((v) => v.name === 'fleet-a')!;
    const stats = await daemon.call('vm.stats', { ids: [vm.id] });
    expect(stats.samples.map((s) => s.vmId)).toEqual([vm.id]);
    // QEMU's resident set: more than nothing, bounded by the guest's memory plus the emulator's own.
    const sample = stats.samples[0]!;
    expect(sample.hypervisorRssBytes).toBeGreaterThan(1024 * 1024);
    expect(sample.hypervisorRssBytes).toBeLessThan((vm.memoryMib + 2048) * 1024 * 1024);
    // The guest's memory is its configured size, reported apart from QEMU's resident set.
    expect(sample.guestMemoryBytes).toBe(vm.memoryMib * 1024 * 1024);
    // CPU is a share of the VM's vCPUs: never above 100, and its host-core figure is that share times the vCPUs.
    expect(sample.vcpus).toBe(vm.vcpus);
    expect(sample.vcpuPercent).toBeLessThanOrEqual(100);
    expect(Math.abs(sample.vcpuPercent - Math.min(100, sample.hostCpuPercent / vm.vcpus))).toBeLessThan(0.11);
  });

  it('filters and sorts the table', async () => {
    const filter = page.getByRole('searchbox', { name: 'Filter VMs' });
    await filter.fill('nobody-matches-this');
    await page.getByTestId('fleet-count').filter({ hasText: '0 of 1 VMs' }).waitFor();
    await filter.fill('ops@');
    await page.getByTestId('fleet-count').filter({ hasText: '1 of 1 VMs' }).waitFor();
    await filter.fill('');
  });

  it('shows the boot log and the live CPU and memory in the detail view', async () => {
    await page.getByTestId('vm-row-fleet-a').getByRole('button', { name: 'fleet-a' }).click();
    await page.getByTestId('vm-title').filter({ hasText: 'fleet-a' }).waitFor();
    await page.getByTestId('console-log').filter({ hasText: 'FIREDECK-READY vm' }).waitFor({ timeout: 30_000 });
    // A running VM's console is followed: its stream stays open.
    expect(await page.getByTestId('console-state').innerText()).toBe('connected');
    const usage = page.getByTestId('vm-detail-usage');
    const vm = (await daemon.call('vm.list', {})).find((v) => v.name === 'fleet-a')!;
    const vcpus = `${vm.vcpus} vCPU${vm.vcpus === 1 ? '' : 's'}`;
    await usage
      .getByTestId('vm-detail-cpu')
      .filter({ hasText: new RegExp(`^\\d+(\\.\\d)?% of ${vcpus}$`) })
      .waitFor({ timeout: 10_000 });
    // Two figures, each labelled: the guest's memory and QEMU's resident set (not one "of" the other).
    const memory = await usage.getByTestId('vm-detail-memory').innerText();
    expect(memory).toMatch(new RegExp(`^Guest memory ${vm.memoryMib} MiB · QEMU process \\d+ MiB RSS$`));
    expect(Number(/QEMU process (\d+) MiB/.exec(memory)![1])).toBeGreaterThan(0);
    fs.mkdirSync(path.join(REPO_ROOT, 'test-results'), { recursive: true });
    await page.screenshot({ path: path.join(REPO_ROOT, 'test-results/e2e-vm-console.png') });
  });

  it('searches the console log and downloads it whole', async () => {
    const search = page.getByRole('searchbox', { name: 'Search the console log' });
    await search.fill('FIREDECK-READY');
    const count = page.getByTestId('console-search-count');
    await count.filter({ hasText: /^1\/\d+$/ }).waitFor();
    const matches = Number(/\/(\d+)$/.exec(await count.innerText())![1]);
    expect(matches).toBeGreaterThanOrEqual(1);
    // The current match is marked and scrolled into view.
    expect(await page.getByTestId('console-log').locator('.line.match').innerText()).toContain('FIREDECK-READY');
    await search.fill('no-such-line-in-any-boot-log');
    await count.filter({ hasText: /^0\/0$/ }).waitFor();
    await search.fill('');

    // The download itself is checked in Chromium; Electron answers a download with its save dialog instead.
    if (stack!.app.browser) {
      const download = page.waitForEvent('download');
      await page.getByRole('button', { name: 'Download' }).click();
      const file = await (await download).path();
      const text = fs.readFileSync(file, 'utf8');
      expect((await download).suggestedFilename()).toBe('fleet-a-console.log');
      expect(text.match(/FIREDECK-READY/g)?.length).toBe(matches);
      expect(text).toContain('FIREDECK-READY vm');
    }
  });

  it(
    'stops the VM from the UI (with confirmation) and the row follows',
    async () => {
      const stop = page.getByTestId('vm-actions').getByRole('button', { name: 'Stop' });
      // Declining changes nothing.
      await stop.click();
      await confirmDialog(page, /^Stop fleet-a on rig\?$/, 'Cancel');
      expect(await page.getByTestId('vm-detail-state').innerText()).toBe('running');
      await stop.click();
      await confirmDialog(page, /^Stop fleet-a on rig\?$/, 'Stop');
      await page
        .getByTestId('vm-detail-state')
        .filter({ hasText: /^(stopping|stopped)$/ })
        .waitFor({ timeout: 10_000 });
      await page
        .getByTestId('vm-detail-state')
        .filter({ hasText: /^stopped$/ })
        .waitFor({ timeout: 120_000 });
      const vm = (await daemon.call('vm.list', {})).find((v) => v.name === 'fleet-a');
      expect(vm?.state).toBe('stopped');
      // A long action says when it is done.
      await page.getByRole('status').filter({ hasText: 'fleet-a: stop done (stopped)' }).waitFor();
      await page.getByRole('button', { name: '← Fleet' }).click();
      await page
        .getByTestId('vm-row-fleet-a')
        .getByTestId('vm-state')
        .filter({ hasText: /^stopped$/ })
        .waitFor();
      await page.screenshot({ path: path.join(REPO_ROOT, 'test-results/e2e-fleet.png') });
    },
    BOOT_TEST_TIMEOUT,
  );

  it(
    'opens a terminal into the CLI VM: a command runs, and resizing the panel resizes the pty',
    async () => {
      await page.getByTestId('vm-row-fleet-a').getByRole('button', { name: 'Start' }).click();
      await page
        .getByTestId('vm-row-fleet-a')
        .getByTestId('vm-state')
        .filter({ hasText: /^running$/ })
        .waitFor({ timeout: 300_000 });
      await page.getByTestId('vm-row-fleet-a').getByRole('button', { name: 'fleet-a' }).click();
      await page.getByText(/ready: .*sshd/).waitFor({ timeout: 300_000 });
      await page.getByRole('tab', { name: 'terminal' }).click();
      await page
        .getByTestId('terminal-state')
        .filter({ hasText: /^connected$/ })
        .waitFor({ timeout: 30_000 });
      const screen = page.getByTestId('terminal').locator('.xterm-rows');
      await page.getByTestId('terminal').click();
      await page.keyboard.type('echo hello-$((6*7)); stty size; echo size-$((2*3))\n');
      // The typed line never contains the computed words, so they show only once the commands ran.
      await screen.filter({ hasText: 'size-6' }).waitFor({ timeout: 30_000 });
      expect(await screen.innerText()).toContain('hello-42');
      const sizeBefore = parseStty(await screen.innerText());

      await stack!.app.resize(900, 600);
      // The resize reaches the pty asynchronously and the page shows no sign of it: ask the pty until it
      // reports the new width (bounded number of tries).
      let after: { rows: number; cols: number } | null = null;
      for (let i = 1; i <= 20 && !(after && after.cols < sizeBefore!.cols); i++) {
        await page.keyboard.type(`clear; stty size; echo resized-$((${i}*1000))\n`);
        await screen.filter({ hasText: `resized-${i * 1000}` }).waitFor({ timeout: 30_000 });
        after = parseStty(await screen.innerText());
      }
      expect(after!.cols).toBeLessThan(sizeBefore!.cols);
      await page.screenshot({ path: path.join(REPO_ROOT, 'test-results/e2e-terminal.png') });
      await stack!.app.resize(1280, 800);
    },
    BOOT_TEST_TIMEOUT,
  );

  it('keeps the shell while another tab is shown; copies a selection and pastes the clipboard', async () => {
    const screen = page.getByTestId('terminal').locator('.xterm-rows');
    if (stack!.app.browser) {
      await stack!.app.browser.context.grantPermissions(['clipboard-read', 'clipboard-write'], {
        origin: new URL(page.url()).origin,
      });
    }
    await page.getByTestId('terminal').click();
    await page.keyboard.type('export FD_MARK=kept-$((5*5)); echo $FD_MARK\n');
    await screen.filter({ hasText: 'kept-25' }).waitFor({ timeout: 30_000 });
    await page.getByRole('tab', { name: 'console' }).click();
    await page.getByTestId('console-log').filter({ hasText: 'FIREDECK-READY' }).waitFor({ timeout: 30_000 });
    await page.getByRole('tab', { name: 'terminal' }).click();
    // The same shell, not a new one: the scrollback is there and the variable is still set.
    expect(await page.getByTestId('terminal-state').innerText()).toBe('connected');
    expect(await screen.innerText()).toContain('kept-25');
    await page.getByTestId('terminal').click();
    await page.keyboard.type('echo again-$FD_MARK\n');
    await screen.filter({ hasText: 'again-kept-25' }).waitFor({ timeout: 30_000 });

    // Copy: a double-click on the word selects it (xterm.js re-renders its rows as the cursor blinks, so the
    // point is taken from the row's place on screen, not from a row element that may be replaced meanwhile).
    const at = await page.evaluate(() => {
      const rows = [...document.querySelectorAll('[data-testid="terminal"] .xterm-rows > div')];
      const row = rows.reverse().find((r) => r.textContent?.trim() === 'again-kept-25');
      const box = row?.getBoundingClientRect();
      return box ? { x: box.left + 4, y: box.top + box.height / 2 } : null;
    });
    expect(at).not.toBeNull();
    await page.mouse.dblclick(at!.x, at!.y);
    await page.getByRole('button', { name: 'Copy', exact: true }).click();
    expect(await page.evaluate(() => navigator.clipboard.readText())).toBe('again-kept-25');

    // Paste: the clipboard's text reaches the shell as input, and the focus goes back to the terminal.
    await page.evaluate(() => navigator.clipboard.writeText('echo pasted-$((3*3))'));
    await page.getByRole('button', { name: 'Paste', exact: true }).click();
    // The shell echoes the pasted line; then the terminal has the focus again and Enter runs it.
    await screen.filter({ hasText: 'echo pasted-$((3*3))' }).waitFor({ timeout: 30_000 });
    await page.waitForFunction(() => document.activeElement?.closest('[data-testid="terminal"]') != null);
    await page.keyboard.press('Enter');
    await screen.filter({ hasText: 'pasted-9' }).waitFor({ timeout: 30_000 });
  });

  it('shows "reconnecting" when the SSH link dies and recovers without a reload; the terminal keeps its scrollback', async () => {
    const screen = page.getByTestId('terminal').locator('.xterm-rows');
    await page.keyboard.type('echo before-$((1+1))\n');
    await screen.filter({ hasText: 'before-2' }).waitFor();
    const marker = await page.evaluate(() => ((window as unknown as { __mark?: number }).__mark = Math.random()));

    for (const pid of execFileSync('pgrep', ['-P', String(sshd.pid)])
      .toString()
      .trim()
      .split('\n')
      .map(Number)) {
      process.kill(pid, 'SIGKILL');
    }
    await page.getByTestId('connection-status').filter({ hasText: 'reconnecting' }).waitFor({ timeout: 15_000 });
    await page
      .getByTestId('connection-status')
      .filter({ hasText: /^connected to / })
      .waitFor({ timeout: 30_000 });
    // Same page: nothing reloaded.
    expect(await page.evaluate(() => (window as unknown as { __mark?: number }).__mark)).toBe(marker);

    await page
      .getByTestId('terminal-state')
      .filter({ hasText: /^(closed|failed)$/ })
      .waitFor({ timeout: 15_000 });
    await page.screenshot({ path: path.join(REPO_ROOT, 'test-results/e2e-terminal-ended.png') });
    await reconnectKeepingScrollback(page, { run: 'echo after-$((2+2))', shows: 'after-4', kept: 'before-2' });
  });

  if (mode === 'web') {
    it('says "disconnected" when the page loses its socket to web mode; Reconnect opens a new shell below the old scrollback', async () => {
      const screen = page.getByTestId('terminal').locator('.xterm-rows');
      await page.getByTestId('terminal').click();
      await page.keyboard.type('echo page-$((3+4))\n');
      await screen.filter({ hasText: 'page-7' }).waitFor({ timeout: 30_000 });
      // The page's own socket to main, caught as it next sends (a key press), then closed as a dropped link would be.
      await page.evaluate(() => {
        const w = window as unknown as { __fdPageSocket?: WebSocket };
        const send = WebSocket.prototype.send;
        WebSocket.prototype.send = function (this: WebSocket, data: Parameters<WebSocket['send']>[0]) {
          w.__fdPageSocket = this;
          WebSocket.prototype.send = send;
          send.call(this, data);
        };
      });
      await page.keyboard.type('#');
      await page.waitForFunction(() => (window as unknown as { __fdPageSocket?: WebSocket }).__fdPageSocket);
      await page.evaluate(() => (window as unknown as { __fdPageSocket: WebSocket }).__fdPageSocket.close());
      await page
        .getByTestId('terminal-state')
        .filter({ hasText: /^disconnected$/ })
        .waitFor({ timeout: 15_000 });
      expect(await page.getByTestId('terminal-state-reason').innerText()).toContain('Lost the connection');
      await page.screenshot({ path: path.join(REPO_ROOT, 'test-results/e2e-terminal-disconnected.png') });
      // The page reconnects its socket by itself; the shell is opened again on request.
      await page.getByText('Reconnected to Firedeck').waitFor({ timeout: 30_000 });
      await reconnectKeepingScrollback(page, { run: 'echo back-$((4+4))', shows: 'back-8', kept: 'page-7' });
    });
  }

  it('goes back with Escape, focuses the filter with "/", and destroys the VM only after confirmation', async () => {
    await page.getByTestId('vm-title').click(); // out of the terminal, which keeps its keys
    await page.keyboard.press('Escape');
    await page.getByTestId('fleet-count').waitFor();
    await page.keyboard.press('/');
    await page.waitForFunction(() => document.activeElement?.getAttribute('aria-label') === 'Filter VMs', null, {
      timeout: 5_000,
    });
    await page.getByTestId('fleet-count').click();

    const row = page.getByTestId('vm-row-fleet-a');
    await row.getByRole('button', { name: 'Destroy' }).click();
    await confirmDialog(page, /^Destroy fleet-a on rig\?$/, 'Cancel');
    expect(await row.count()).toBe(1);
    await row.getByRole('button', { name: 'Destroy' }).click();
    // Destructive: Cancel holds the focus, so a stray Enter would not destroy anything.
    await page.waitForFunction(
      () =>
        document.activeElement?.closest('[role="dialog"]') !== null && document.activeElement?.textContent === 'Cancel',
      null,
      { timeout: 5_000 },
    );
    await confirmDialog(page, /^Destroy fleet-a on rig\?$/, 'Destroy');
    await row.waitFor({ state: 'detached', timeout: 120_000 });
    await page.getByTestId('fleet-count').filter({ hasText: '0 of 0 VMs' }).waitFor();
    expect((await daemon.call('vm.list', {})).map((v) => v.name)).not.toContain('fleet-a');
  });
});

/** Reconnect on an ended terminal: a new shell runs `run` and shows `shows`; the old session's `kept` is still there. */
async function reconnectKeepingScrollback(
  page: Page,
  step: { run: string; shows: string; kept: string },
): Promise<void> {
  const screen = page.getByTestId('terminal').locator('.xterm-rows');
  await page.getByRole('button', { name: 'Reconnect' }).click();
  await page
    .getByTestId('terminal-state')
    .filter({ hasText: /^connected$/ })
    .waitFor({ timeout: 30_000 });
  await page.getByTestId('terminal').click();
  await page.keyboard.type(`${step.run}\n`);
  await screen.filter({ hasText: step.shows }).waitFor({ timeout: 30_000 });
  expect(await screen.innerText()).toContain(step.kept);
}

function parseStty(text: string): { rows: number; cols: number } | null {
  const all = [...text.matchAll(/^(\d{1,3}) (\d{1,3})$/gm)];
  const last = all.at(-1);
  return last ? { rows: Number(last[1]), cols: Number(last[2]) } : null;
}
