import { describe, expect, it } from 'vitest';
import { hardenWebContents, isExternalLink, permissionAllowed, type HardenableContents } from './hardening';

/** Records what hardening registers, the way Electron's WebContents would hold it. */
function recordingContents(): {
  contents: HardenableContents;
  fire(event: string): boolean;
  open(url: string): { action: string };
} {
  const listeners = new Map<string, (e: { preventDefault(): void }) => void>();
  let openHandler: ((d: { url: string }) => { action: 'deny' }) | null = null;
  return {
    contents: {
      on: (event, listener) => listeners.set(event, listener),
      setWindowOpenHandler: (handler) => {
        openHandler = handler;
      },
    },
    fire(event) {
      let prevented = false;
      listeners.get(event)?.({ preventDefault: () => (prevented = true) });
      return prevented;
    },
    open(url) {
      if (!openHandler) throw new Error('no window-open handler registered');
      return openHandler({ url });
    },
  };
}

describe('Electron web contents hardening', () => {
  it('prevents navigation, redirects and webviews', () => {
    const rec = recordingContents();
    hardenWebContents(rec.contents, () => undefined);
    expect(rec.fire('will-navigate')).toBe(true);
    expect(rec.fire('will-redirect')).toBe(true);
    expect(rec.fire('will-attach-webview')).toBe(true);
  });

  it('denies every new window; http(s) links go to the system browser, nothing else does', () => {
    const rec = recordingContents();
    const opened: string[] = [];
    hardenWebContents(rec.contents, (url) => opened.push(url));
    for (const url of [
      'https://example.org/device?code=ABCD',
      'http://10.0.0.5:8080/',
      'file:///etc/passwd',
      'javascript:alert(1)',
      'vscode://x',
      'https://user:pw@example.org/', // secret-scan: allow a URL with credentials that must be refused
      'not a url',
    ]) {
      expect(rec.open(url)).toEqual({ action: 'deny' });
    }
    expect(opened).toEqual(['https://example.org/device?code=ABCD', 'http://10.0.0.5:8080/']);
  });

  it('grants the renderer page clipboard, fullscreen and notifications only, and nothing to other pages', () => {
    const page = 'file:///app/out/renderer/index.html';
    expect(permissionAllowed('clipboard-read', page, page)).toBe(true);
    expect(permissionAllowed('clipboard-sanitized-write', page, page)).toBe(true);
    expect(permissionAllowed('fullscreen', page, page)).toBe(true);
    expect(permissionAllowed('notifications', page, page)).toBe(true);
    expect(permissionAllowed('notifications', 'https://example.org/', page)).toBe(false);
    for (const p of ['media', 'geolocation', 'openExternal', 'pointerLock', 'hid', 'serial']) {
      expect(permissionAllowed(p, page, page)).toBe(false);
    }
    expect(permissionAllowed('clipboard-read', 'https://example.org/', page)).toBe(false);
    expect(permissionAllowed('fullscreen', undefined, page)).toBe(false);
  });

  it('treats only plain http(s) URLs as external links', () => {
    expect(isExternalLink('https://example.org')).toBe(true);
    expect(isExternalLink('ftp://example.org')).toBe(false);
    expect(isExternalLink('')).toBe(false);
  });
});
