import { isTrustedSender } from './windowOptions';

/** The few parts of Electron's `WebContents` that hardening touches (so it is testable without Electron). */
export interface HardenableContents {
  on(
    event: 'will-navigate' | 'will-redirect' | 'will-attach-webview',
    listener: (e: { preventDefault(): void }) => void,
  ): unknown;
  setWindowOpenHandler(handler: (details: { url: string }) => { action: 'deny' }): void;
}

/**
 * Every web contents: no navigation away from the renderer, no `<webview>`, no new windows. A link the
 * operator clicks (e.g. in a terminal) opens in the system browser when it is http(s); nothing else opens.
 */
export function hardenWebContents(contents: HardenableContents, openExternal: (url: string) => void): void {
  contents.on('will-navigate', (e) => e.preventDefault());
  contents.on('will-redirect', (e) => e.preventDefault());
  contents.on('will-attach-webview', (e) => e.preventDefault());
  contents.setWindowOpenHandler(({ url }) => {
    if (isExternalLink(url)) openExternal(url);
    return { action: 'deny' };
  });
}

/** Only plain web links leave the app: no file:, javascript:, custom schemes or credentials in the URL. */
export function isExternalLink(url: string): boolean {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return false;
  }
  return (
    (parsed.protocol === 'https:' || parsed.protocol === 'http:') && parsed.username === '' && parsed.password === ''
  );
}

/**
 * What the renderer page may ask for: clipboard reads (terminal Paste) and sanitized writes (Copy), fullscreen
 * (the desktop view) and notifications (a login session completed or failed: the page's web `Notification`,
 * which Electron shows as the system's native notification). Everything else (camera, geolocation, …) and every
 * other origin is refused.
 */
const ALLOWED_PERMISSIONS = new Set(['clipboard-read', 'clipboard-sanitized-write', 'fullscreen', 'notifications']);

export function permissionAllowed(permission: string, requestingUrl: string | undefined, rendererUrl: string): boolean {
  return ALLOWED_PERMISSIONS.has(permission) && isTrustedSender(requestingUrl, true, rendererUrl);
}
