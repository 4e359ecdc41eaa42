import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Page } from 'playwright-core';

/** noVNC's canvas in the desktop view: the guest's framebuffer as the app received it. */
export const CANVAS = '[data-testid="desktop-screen"] canvas';

/** Colours of the target page (below), chosen to be found on the canvas and nowhere in Firefox's own UI. */
const PAGE_COLOUR = '#00c853';
const FOCUS_COLOUR = '#ff00ff';
/** The lobby: where the guest waits for the test to show it a page (and where a submitted form lands). */
const LOBBY_COLOUR = '#ffd600';

export interface CanvasStats {
  width: number;
  height: number;
  /** Share of the sampled pixels that have the most common colour. */
  dominantShare: number;
  distinctColours: number;
  /** Near white (Firefox's about:blank page and toolbars). */
  lightShare: number;
  /** The target page's green: it is loaded. */
  pageShare: number;
  /** The target page's magenta: its input has the keyboard focus. */
  focusShare: number;
  /** The lobby's yellow. */
  lobbyShare: number;
}

/** Samples the canvas in the page (every 7th pixel). */
export function canvasStats(page: Page): Promise<CanvasStats | null> {
  return page.evaluate((selector): CanvasStats | null => {
    const canvas = document.querySelector<HTMLCanvasElement>(selector);
    const ctx = canvas?.getContext('2d');
    if (!canvas || !ctx || canvas.width === 0 || canvas.height === 0) return null;
    const data = ctx.getImageData(0, 0, canvas.width, canvas.height).data;
    const counts = new Map<number, number>();
    let samples = 0;
    let light = 0;
    let green = 0;
    let magenta = 0;
    let yellow = 0;
    for (let i = 0; i < data.length; i += 4 * 7) {
      const r = data[i]!;
      const g = data[i + 1]!;
      const b = data[i + 2]!;
      samples++;
      const key = (r << 16) | (g << 8) | b;
      counts.set(key, (counts.get(key) ?? 0) + 1);
      if (r > 200 && g > 200 && b > 200) light++;
      if (r < 40 && g > 170 && g < 230 && b > 50 && b < 120) green++;
      if (r > 220 && g < 40 && b > 220) magenta++;
      if (r > 230 && g > 190 && g < 235 && b < 40) yellow++;
    }
    return {
      width: canvas.width,
      height: canvas.height,
      dominantShare: Math.max(...counts.values()) / samples,
      distinctColours: counts.size,
      lightShare: light / samples,
      pageShare: green / samples,
      focusShare: magenta / samples,
      lobbyShare: yellow / samples,
    };
  }, CANVAS);
}

/** What the canvas must show: at least these shares. */
export interface CanvasGoal {
  minLightShare?: number;
  minPageShare?: number;
  minFocusShare?: number;
  minLobbyShare?: number;
}

function meets(stats: CanvasStats | null, goal: CanvasGoal): stats is CanvasStats {
  return (
    stats !== null &&
    stats.lightShare >= (goal.minLightShare ?? 0) &&
    stats.pageShare >= (goal.minPageShare ?? 0) &&
    stats.focusShare >= (goal.minFocusShare ?? 0) &&
    stats.lobbyShare >= (goal.minLobbyShare ?? 0)
  );
}

/** Polls the canvas (no event says "the guest painted this") until it meets the goal; null at the deadline. */
export async function pollCanvas(page: Page, goal: CanvasGoal, timeoutMs: number): Promise<CanvasStats | null> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const stats = await canvasStats(page);
    if (meets(stats, goal)) return stats;
    if (Date.now() >= deadline) return null;
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
}

/** Like pollCanvas, but fails naming what was awaited and what the canvas showed. */
export async function waitForCanvas(
  page: Page,
  what: string,
  goal: CanvasGoal,
  timeoutMs: number,
): Promise<CanvasStats> {
  const stats = await pollCanvas(page, goal, timeoutMs);
  if (stats) return stats;
  const now = await canvasStats(page).catch(() => null);
  const view = await page
    .evaluate(() => document.querySelector('.desktop-view .toolbar')?.textContent ?? '(no desktop view)')
    .catch(() => '(page gone)');
  throw new Error(`${what}: not shown within ${timeoutMs} ms; canvas now ${JSON.stringify(now)}; view: ${view}`);
}

/** The desktop's sizes in the page: the guest's framebuffer (noVNC's canvas), the panel it sits in, as shown. */
export interface DesktopSizes {
  framebuffer: { width: number; height: number };
  /** What noVNC asks the guest for when the screen fills the panel (its screen element, in whole CSS pixels). */
  panel: { width: number; height: number };
  /** The canvas on the page (scaled or not). */
  shown: { width: number; height: number };
}

export function desktopSizes(page: Page): Promise<DesktopSizes> {
  return page.evaluate((selector) => {
    const canvas = document.querySelector<HTMLCanvasElement>(selector)!;
    const panel = canvas.parentElement!.getBoundingClientRect();
    const shown = canvas.getBoundingClientRect();
    return {
      framebuffer: { width: canvas.width, height: canvas.height },
      panel: { width: Math.floor(panel.width), height: Math.floor(panel.height) },
      shown: { width: Math.round(shown.width), height: Math.round(shown.height) },
    };
  }, CANVAS);
}

/**
 * Waits until the guest's framebuffer has the panel's size (noVNC asked the guest with SetDesktopSize, and the
 * guest's ExtendedDesktopSize answer resized the canvas); fails saying both sizes.
 */
export async function waitForScreenFollowing(page: Page, what: string, timeoutMs: number): Promise<DesktopSizes> {
  try {
    await page.waitForFunction(
      (selector) => {
        const canvas = document.querySelector<HTMLCanvasElement>(selector);
        const panel = canvas?.parentElement?.getBoundingClientRect();
        return (
          canvas !== null &&
          panel !== undefined &&
          canvas.width === Math.floor(panel.width) &&
          canvas.height === Math.floor(panel.height)
        );
      },
      CANVAS,
      { timeout: timeoutMs },
    );
  } catch (err) {
    const now = await desktopSizes(page).catch(() => null);
    throw new Error(`${what}: the guest's screen did not take the panel's size (${JSON.stringify(now)}): ${err}`);
  }
  return desktopSizes(page);
}

/** Waits until the canvas has not changed for `quietMs` (sampled every 250 ms): the guest is done drawing. */
export async function waitForStillCanvas(page: Page, what: string, quietMs: number, timeoutMs: number): Promise<void> {
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

/**
 * A small web server on the VMs' bridge that the guest's Firefox visits, so that each spec can put a page in
 * front of it without Firefox's address bar (whose suggestions, under load, Enter may take before they are
 * updated for what was typed; and whose Ctrl+L selection can land late):
 *  - `/lobby` (yellow) waits, by long poll, for the page the test shows next;
 *  - `/desk/<name>` is one big text input (green; magenta while it has the focus) in a form that submits to
 *    `/<name>?k=<text>`, which answers with the lobby again.
 * Only the first visit, to the lobby, goes through the address bar.
 */
export interface GuestTarget {
  port: number;
  /** Every path the guest asked for, in order (the lobby's polls left out). */
  paths: string[];
  /**
   * Brings the guest's Firefox to the lobby: it is there already after a submitted form (given a while to load),
   * else it is opened through the address bar (retried: see above).
   */
  openLobby(page: Page): Promise<void>;
  /** Shows `/desk/<name>` from the lobby and gives its input the keyboard focus (a click through noVNC). */
  show(page: Page, name: string): Promise<void>;
  /** Resolves with the first requested path that starts with `prefix`. */
  waitFor(prefix: string, timeoutMs: number): Promise<string>;
  /**
   * Resolves once the guest's Firefox, on the lobby, reports that size of its screen (`screen.width` and
   * `height`: the X screen as the guest itself sees it); fails naming the sizes it reported.
   */
  waitForGuestScreen(width: number, height: number, timeoutMs: number): Promise<void>;
  close(): Promise<void>;
}

const LOBBY_HTML = `<!doctype html><title>Firedeck lobby</title><body style="margin:0;height:100vh;background:${LOBBY_COLOUR}">
<script>
// The guest's screen size as Firefox sees it, each time it changes.
let screenSize = '';
const reportScreen = () => {
  const now = screen.width + 'x' + screen.height;
  if (now === screenSize) return;
  screenSize = now;
  fetch('/screen?size=' + now + '&window=' + outerWidth + 'x' + outerHeight, { cache: 'no-store' }).catch(() => {
    screenSize = '';
  });
};
reportScreen();
setInterval(reportScreen, 250);
(async () => {
  for (;;) {
    try {
      const next = await (await fetch('/lobby/next', { cache: 'no-store' })).text();
      if (next) return location.replace(next);
    } catch {
      await new Promise((r) => setTimeout(r, 1000));
    }
  }
})();
</script>`;

function deskHtml(name: string): string {
  return `<!doctype html><title>Firedeck ${name}</title><style>
html,body{margin:0;height:100%}form{height:100%}
input{box-sizing:border-box;width:100%;height:100%;border:0;outline:0;font:32px monospace;background:${PAGE_COLOUR};color:#000;caret-color:transparent}
input:focus{background:${FOCUS_COLOUR}}</style>
<form action="/${name}" method="get"><input name="k" autocomplete="off" spellcheck="false"></form>`;
}

/** How long the lobby's poll is held open before it is answered empty (and asked again). */
const LOBBY_POLL_MS = 20_000;

/**
 * The guest's web target on `address` (the bridge's), on `port` (0: any free one). A daemon isolates its guests
 * from the host: give it the port in its guest-allow setting (`guestAllowPort` picks one before it starts).
 */
export async function startGuestTarget(address: string, port = 0): Promise<GuestTarget> {
  const paths: string[] = [];
  /** What the lobby reported, in order: `<screen>` and the Firefox window's outer size, e.g. 1280x800 / 1280x800. */
  const screens: { screen: string; window: string }[] = [];
  const waiters = new Set<() => void>();
  let pending: string | null = null;
  const pollers = new Set<http.ServerResponse>();
  const answer = (res: http.ServerResponse, next: string): void => {
    pollers.delete(res);
    res.writeHead(200, { 'content-type': 'text/plain', 'cache-control': 'no-store' });
    res.end(next);
  };
  const server = http.createServer((req, res) => {
    const url = req.url ?? '';
    if (url === '/lobby/next') {
      if (pending !== null) {
        answer(res, pending);
        pending = null;
        return;
      }
      pollers.add(res);
      const timer = setTimeout(() => answer(res, ''), LOBBY_POLL_MS);
      res.once('close', () => {
        clearTimeout(timer);
        pollers.delete(res);
      });
      return;
    }
    if (url.startsWith('/screen?')) {
      const query = new URL(url, 'http://guest').searchParams;
      screens.push({ screen: query.get('size') ?? '', window: query.get('window') ?? '' });
      res.writeHead(204).end();
      waiters.forEach((w) => w());
      return;
    }
    if (url === '/favicon.ico') {
      res.writeHead(404).end();
      return;
    }
    paths.push(url);
    const desk = /^\/desk\/([a-z]+)$/.exec(url);
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
    res.end(desk ? deskHtml(desk[1]!) : LOBBY_HTML);
    waiters.forEach((w) => w());
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, address, resolve);
  });
  const boundPort = (server.address() as AddressInfo).port;
  const lobbyUrl = `http://${address}:${boundPort}/lobby`;

  return {
    port: boundPort,
    paths,
    async openLobby(page) {
      if (paths.length > 0 && (await pollCanvas(page, { minLobbyShare: 0.3 }, 60_000))) return;
      const tries = 3;
      for (let attempt = 1; ; attempt++) {
        await waitForStillCanvas(page, `the screen before opening ${lobbyUrl}`, 1_000, 120_000);
        await page.locator(CANVAS).focus();
        // Under TCG Firefox selects the address bar's text some time after Ctrl+L; a selection that lands while
        // the address is typed swallows its first characters. So: a probe key, a still screen, then Ctrl+A
        // (immediate) and the address over it.
        await page.keyboard.press('Control+l');
        await page.keyboard.type('x');
        await waitForStillCanvas(page, 'the address bar after Ctrl+L', 1_000, 120_000);
        await page.keyboard.press('Control+a');
        await page.keyboard.type(lobbyUrl, { delay: 10 });
        await waitForStillCanvas(page, `the typed address ${lobbyUrl}`, 1_000, 120_000);
        await page.keyboard.press('Enter');
        if (await pollCanvas(page, { minLobbyShare: 0.3 }, 90_000)) return;
        if (attempt === tries) {
          throw new Error(
            `the guest did not open ${lobbyUrl} in ${tries} tries; it asked for ${JSON.stringify(paths)}`,
          );
        }
        await page.keyboard.press('Escape');
      }
    },
    async show(page, name) {
      const next = `/desk/${name}`;
      const poller = pollers.values().next();
      if (poller.done) pending = next;
      else answer(poller.value, next);
      await waitForCanvas(page, `${next} (shown from the lobby)`, { minPageShare: 0.3 }, 120_000);
      const box = await page.locator(CANVAS).boundingBox();
      if (!box) throw new Error('the desktop canvas has no box');
      // The input fills the page: a click in the middle of the screen lands on it.
      await page.mouse.click(box.x + box.width / 2, box.y + box.height * 0.6);
      await waitForCanvas(page, `the focused input of ${next}`, { minFocusShare: 0.3 }, 120_000);
      await page.locator(CANVAS).focus();
    },
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
    waitForGuestScreen(width, height, timeoutMs) {
      const size = `${width}x${height}`;
      return new Promise((resolve, reject) => {
        const check = (): void => {
          if (screens.at(-1)?.screen !== size) return;
          clearTimeout(timer);
          waiters.delete(check);
          resolve();
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(
            new Error(
              `the guest's Firefox reported no ${size} screen within ${timeoutMs} ms: ${JSON.stringify(screens)}`,
            ),
          );
        }, timeoutMs);
        waiters.add(check);
        check();
      });
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const res of pollers) res.destroy();
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** The `k` parameter of a path the target's form submitted, decoded as the browser encoded it. */
export function submittedText(path: string): string | null {
  return new URL(path, 'http://guest').searchParams.get('k');
}
