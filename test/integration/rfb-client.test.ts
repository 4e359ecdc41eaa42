import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stopChild } from '../../host-daemon/src/system/processes';
import { runRfbProxy } from '../../host-daemon/src/vnc/rfbProxy';
import { FiredeckError } from '../../src/shared/errors';
import { CHROMIUM_ARGS, findChromium } from '../rig/chromium';
import { connectRfb, decodePng, type RfbClient } from '../rig/rfb';
import { makeTempDir, waitForOutput } from '../rig/tmp';
import { startXvnc, type Xvnc } from '../rig/xvnc';

const WIDTH = 1024;
const HEIGHT = 700;
const PAGE = `<!doctype html><html><head><title>rfb target</title></head>
<body style="margin:0;background:#fff">
<div style="height:120px;background:#1e6bd6;color:#fff;font:32px sans-serif;padding:20px">RFB client test</div>
<input id="target" autofocus style="font:28px monospace;width:600px;margin:40px">
</body></html>`;

function tcp(xvnc: Xvnc): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: xvnc.host, port: xvnc.port });
    socket.once('connect', () => resolve(socket));
    socket.once('error', reject);
  });
}

describe('RFB client (test/rig/rfb.ts) against a real Xvnc with Chromium on it', () => {
  let xvnc: Xvnc;
  let dir: string;
  let browserProcess: ChildProcess;
  let browser: Browser;
  let page: Page;

  beforeAll(async () => {
    xvnc = await startXvnc({ geometry: `${WIDTH}x${HEIGHT}` });
    dir = makeTempDir('rfb-client');
    const pageFile = path.join(dir, 'page.html');
    fs.writeFileSync(pageFile, PAGE);
    // A real window on the Xvnc display (not headless), driven only through RFB; CDP is for reading back.
    browserProcess = spawn(
      findChromium(),
      [
        ...CHROMIUM_ARGS,
        '--no-default-browser-check',
        '--password-store=basic',
        `--user-data-dir=${path.join(dir, 'profile')}`,
        '--remote-debugging-port=0',
        '--window-position=0,0',
        `--window-size=${WIDTH},${HEIGHT}`,
        `file://${pageFile}`,
      ],
      { env: { ...process.env, DISPLAY: `:${xvnc.display}` }, stdio: ['ignore', 'ignore', 'pipe'] },
    );
    const line = await waitForOutput(browserProcess.stderr!, /DevTools listening on (ws:\/\/\S+)/, 30_000, 'chromium');
    browser = await chromium.connectOverCDP(line.replace('DevTools listening on ', ''));
    const context = browser.contexts()[0]!;
    page = context.pages().find((p) => p.url().startsWith('file:')) ?? (await context.waitForEvent('page'));
    await page.waitForLoadState('load');
    await page.waitForFunction(() => document.activeElement?.id === 'target');
  });

  afterAll(async () => {
    await browser?.close().catch(() => undefined);
    if (browserProcess) await stopChild(browserProcess);
    await xvnc?.stop();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('authenticates with VncAuth and types "Hello, World! 123" into the focused input, Shift included', async () => {
    const rfb = await connectRfb(await tcp(xvnc), { password: xvnc.password, peer: 'Xvnc' });
    try {
      expect(rfb.width).toBe(WIDTH);
      expect(rfb.height).toBe(HEIGHT);
      // Keyboard focus follows the pointer on an X display without a window manager: put it on the window.
      await rfb.pointer(Math.floor(WIDTH / 2), Math.floor(HEIGHT / 2));
      await rfb.typeText('Hello, World! 123');
      await expect.poll(() => page.inputValue('#target'), { timeout: 10_000 }).toBe('Hello, World! 123');
      await rfb.key('BackSpace');
      await rfb.key('BackSpace');
      await rfb.key('BackSpace');
      await expect.poll(() => page.inputValue('#target'), { timeout: 10_000 }).toBe('Hello, World! ');
    } finally {
      await rfb.close();
    }
  });

  it('saves a full framebuffer as a PNG of the framebuffer size that is not one colour', async () => {
    const rfb = await connectRfb(await tcp(xvnc), { password: xvnc.password, peer: 'Xvnc' });
    try {
      const file = path.join(dir, 'shot.png');
      const size = await rfb.screenshot(file);
      expect(size).toEqual({ width: WIDTH, height: HEIGHT });
      const png = fs.readFileSync(file);
      // IHDR straight from the bytes, then a full decode (CRCs checked, zlib inflated).
      expect(png.toString('latin1', 12, 16)).toBe('IHDR');
      expect([png.readUInt32BE(16), png.readUInt32BE(20)]).toEqual([WIDTH, HEIGHT]);
      const { width, height, rgb } = decodePng(png);
      expect([width, height]).toEqual([WIDTH, HEIGHT]);
      const colours = new Set<number>();
      for (let i = 0; i < rgb.length && colours.size < 3; i += 3 * 97) {
        colours.add((rgb[i]! << 16) | (rgb[i + 1]! << 8) | rgb[i + 2]!);
      }
      expect(colours.size).toBeGreaterThan(1);
      // The page's blue banner (#1e6bd6) is somewhere on the screen.
      let blue = false;
      for (let i = 0; i < rgb.length && !blue; i += 3)
        blue = rgb[i] === 0x1e && rgb[i + 1] === 0x6b && rgb[i + 2] === 0xd6;
      expect(blue).toBe(true);
      // A second screenshot on the same connection works as well (the update queue is not left stuck).
      await rfb.screenshot(path.join(dir, 'shot2.png'));
    } finally {
      await rfb.close();
    }
  });

  it('refuses a wrong VNC password with a typed auth_failed error', async () => {
    const wrong = `${xvnc.password.slice(0, 7)}${xvnc.password.endsWith('x') ? 'y' : 'x'}`;
    const err = await connectRfb(await tcp(xvnc), { password: wrong, peer: 'Xvnc' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(FiredeckError);
    expect((err as FiredeckError).kind).toBe('auth_failed');
    expect((err as FiredeckError).message).not.toContain(wrong);
  });

  it('without a password, refuses a server that only offers VncAuth (auth_failed with a hint)', async () => {
    const err = await connectRfb(await tcp(xvnc), { peer: 'Xvnc' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(FiredeckError);
    expect((err as FiredeckError).kind).toBe('auth_failed');
    expect((err as FiredeckError).hint).toMatch(/password/);
  });

  it('speaks security None through the daemon RFB proxy (what `firedeckd vnc` presents on stdin/stdout)', async () => {
    const toProxy = new PassThrough();
    const fromProxy = new PassThrough();
    const proxy = runRfbProxy({
      client: { input: toProxy, output: fromProxy },
      guest: await tcp(xvnc),
      password: xvnc.password,
    });
    const rfb: RfbClient = await connectRfb({ input: fromProxy, output: toProxy }, { peer: 'firedeckd vnc' });
    try {
      expect([rfb.width, rfb.height]).toEqual([WIDTH, HEIGHT]);
      await page.fill('#target', '');
      await rfb.typeText('via proxy ~!@#$%^&*()_+{}|:"<>?');
      await expect.poll(() => page.inputValue('#target'), { timeout: 10_000 }).toBe('via proxy ~!@#$%^&*()_+{}|:"<>?');
      const shot = await rfb.screenshot(path.join(dir, 'proxy.png'));
      expect(shot).toEqual({ width: WIDTH, height: HEIGHT });
    } finally {
      await rfb.close();
      toProxy.end();
      await proxy.catch(() => undefined);
    }
  });
});
