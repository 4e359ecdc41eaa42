import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import { launchChromium, type ChromiumRig } from '../test/rig/chromium';
import { makeTempDir } from '../test/rig/tmp';
import type { FrameStats } from './fleet.harness';
import { record } from './report';

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
    const loads: [string, FrameStats][] = [
      ['10 batches/s × 50 VMs', light],
      ['10 batches/s × all 500 VMs', heavy],
      ['10 vm.stats/s × all 500 VMs', stats],
      ['10/s: 50 VMs + stats of all', both],
    ];
    for (const [load, s] of loads) {
      record({
        name: `fleet frame time p95, 500 VMs, ${load}`,
        value: s.p95,
        unit: 'ms',
        baselineName: 'idle table p95',
        baselineValue: idle.p95,
        better: 'lower',
        note: `p50 ${s.p50.toFixed(1)} ms, max ${s.max.toFixed(1)} ms over ${s.frames} frames, ${s.updatesApplied} updates`,
      });
    }
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
    record({
      name: 'console throughput into xterm.js (5×32 KiB in flight)',
      value: result.xterm,
      unit: 'MB/s',
      baselineName: "the log view's line buffer",
      baselineValue: result.buffer,
      better: 'higher',
      note: `${bytes / 1024 / 1024} MiB of boot-log text`,
    });
    expect(result.xterm).toBeGreaterThan(0);
  });
});
