import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import { launchChromium, type ChromiumRig } from '../test/rig/chromium';
import { makeTempDir } from '../test/rig/tmp';
import type { FrameStats } from './fleet.harness';

/**
 * The fleet table's frame time with 500 VMs while 10 update batches a second arrive (a light load of 50 VMs
 * per batch, and every VM in every batch), against the idle table as baseline; and console throughput into
 * xterm.js against the log view's own line buffer. Chromium headless, real renderer code.
 */
const here = path.dirname(fileURLToPath(import.meta.url));

describe('fleet and console bench', () => {
  let dir: string;
  let browser: ChromiumRig;
  let page: Page;

  beforeAll(async () => {
    dir = makeTempDir('bench-fleet');
    await build({
      entryPoints: [path.join(here, 'fleet.harness.ts')],
      outdir: dir,
      bundle: true,
      format: 'iife',
      target: 'es2022',
      jsx: 'automatic',
      minify: true,
      define: { 'process.env.NODE_ENV': '"production"' },
      logLevel: 'warning',
    });
    fs.writeFileSync(
      path.join(dir, 'index.html'),
      '<!doctype html><html><head><link rel="stylesheet" href="fleet.harness.css"></head><body style="margin:0"><div id="root"></div><script src="fleet.harness.js"></script></body></html>',
    );
    browser = await launchChromium();
    page = await browser.newPage();
    await page.setViewportSize({ width: 1280, height: 900 });
    await page.goto(`file://${path.join(dir, 'index.html')}`);
    await page.waitForFunction(() => 'bench' in window);
  });

  afterAll(async () => {
    await browser?.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  const fleetRun = (count: number, hz: number, perTick: number, ms: number, statsHz = 0): Promise<FrameStats> =>
    page.evaluate(
      ([c, h, p, m, st]) =>
        (window as unknown as { bench: { fleetRun: (...a: number[]) => Promise<FrameStats> } }).bench.fleetRun(
          c!,
          h!,
          p!,
          m!,
          st!,
        ),
      [count, hz, perTick, ms, statsHz],
    );

  it('fleet frame time, 500 VMs, 10 updates/s', async () => {
    const idle = await fleetRun(500, 0, 0, 3000);
    const light = await fleetRun(500, 10, 50, 5000);
    const heavy = await fleetRun(500, 10, 500, 5000);
    const stats = await fleetRun(500, 0, 0, 5000, 10);
    const both = await fleetRun(500, 10, 50, 5000, 10);
    const fmt = (s: FrameStats): string =>
      `p50 ${s.p50.toFixed(1)} ms, p95 ${s.p95.toFixed(1)} ms, max ${s.max.toFixed(1)} ms over ${s.frames} frames`;
    console.log(
      [
        'fleet, 500 VMs:',
        `  idle (baseline):                 ${fmt(idle)}`,
        `  10 batches/s × 50 VMs:           ${fmt(light)}  (${light.updatesApplied} updates; p95 ×${(light.p95 / idle.p95).toFixed(2)} of idle)`,
        `  10 batches/s × all 500 VMs:      ${fmt(heavy)}  (${heavy.updatesApplied} updates; p95 ×${(heavy.p95 / idle.p95).toFixed(2)} of idle)`,
        `  10 vm.stats/s × all 500 VMs:     ${fmt(stats)}  (${stats.updatesApplied} samples; p95 ×${(stats.p95 / idle.p95).toFixed(2)} of idle)`,
        `  both (50 VMs + stats, 10/s):     ${fmt(both)}  (${both.updatesApplied} updates; p95 ×${(both.p95 / idle.p95).toFixed(2)} of idle)`,
      ].join('\n'),
    );
    expect(stats.updatesApplied).toBeGreaterThan(0);
    expect(light.updatesApplied).toBeGreaterThan(0);
    expect(heavy.frames).toBeGreaterThan(0);
  });

  it('console throughput into xterm.js', async () => {
    const bytes = 16 * 1024 * 1024;
    const result = await page.evaluate(async (n) => {
      const b = (
        window as unknown as {
          bench: { xtermThroughput: (n: number) => Promise<number>; bufferThroughput: (n: number) => number };
        }
      ).bench;
      return { xterm: await b.xtermThroughput(n), buffer: b.bufferThroughput(n) };
    }, bytes);
    console.log(
      `console, ${bytes / 1024 / 1024} MiB of boot-log text:\n` +
        `  log view line buffer (baseline): ${result.buffer.toFixed(1)} MB/s\n` +
        `  xterm.js, 5×32 KiB in flight:    ${result.xterm.toFixed(1)} MB/s  (×${(result.xterm / result.buffer).toFixed(2)} of baseline)`,
    );
    expect(result.xterm).toBeGreaterThan(0);
  });
});
