import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { RENDERER_CSP } from '../app/csp';
import { isTrustedIpcEvent, isTrustedSender, mainWindowOptions } from './windowOptions';

const rendererHtml = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../renderer/index.html');

describe('Electron window security', () => {
  const opts = mainWindowOptions('/app/out/preload/index.cjs');

  it('runs the renderer sandboxed, isolated, without Node and with web security', () => {
    expect(opts.webPreferences).toMatchObject({
      preload: '/app/out/preload/index.cjs',
      sandbox: true,
      contextIsolation: true,
      nodeIntegration: false,
      nodeIntegrationInWorker: false,
      nodeIntegrationInSubFrames: false,
      webSecurity: true,
      allowRunningInsecureContent: false,
      webviewTag: false,
      experimentalFeatures: false,
      navigateOnDragDrop: false,
    });
  });

  it('turns middle-click (auxclick) off, so a middle click on a link opens nothing', () => {
    const disabled = (opts.webPreferences?.disableBlinkFeatures ?? '').split(',').map((f) => f.trim());
    expect(disabled).toContain('Auxclick');
    expect(opts.webPreferences?.enableBlinkFeatures).toBeUndefined();
  });

  it('has a CSP that allows only our own scripts and no framing or plugins', () => {
    const directives = new Map(RENDERER_CSP.split('; ').map((d) => [d.split(' ')[0], d.split(' ').slice(1).join(' ')]));
    expect(directives.get('default-src')).toBe("'self'");
    expect(directives.get('script-src')).toBe("'self'");
    expect(RENDERER_CSP).not.toContain('unsafe-eval');
    expect(directives.get('object-src')).toBe("'none'");
    expect(directives.get('frame-ancestors')).toBe("'none'");
    expect(directives.get('base-uri')).toBe("'none'");
  });

  it("has the same CSP in the page's meta tag as in the header (a meta tag cannot carry frame-ancestors)", () => {
    const html = fs.readFileSync(rendererHtml, 'utf8');
    const metas = [...html.matchAll(/http-equiv="Content-Security-Policy"\s+content="([^"]*)"/g)];
    expect(metas).toHaveLength(1);
    const header = RENDERER_CSP.split('; ').filter((d) => !d.startsWith('frame-ancestors '));
    expect(metas[0]![1]!.split('; ')).toEqual(header);
  });

  it('accepts IPC only from the renderer page in the main frame', () => {
    const page = 'file:///app/out/renderer/index.html';
    expect(isTrustedSender('file:///app/out/renderer/index.html', true, page)).toBe(true);
    expect(isTrustedSender('file:///app/out/renderer/index.html#/fleet', true, page)).toBe(true);
    expect(isTrustedSender('file:///app/out/renderer/index.html', false, page)).toBe(false);
    expect(isTrustedSender('file:///tmp/evil.html', true, page)).toBe(false);
    expect(isTrustedSender('https://example.com/out/renderer/index.html', true, page)).toBe(false);
    expect(isTrustedSender(undefined, true, page)).toBe(false);
    expect(isTrustedSender('not a url', true, page)).toBe(false);
  });

  it('serves an IPC call only from the main frame of the window it belongs to, showing the renderer page', () => {
    const page = 'file:///app/out/renderer/index.html';
    const mainFrame = { url: page };
    const contents = { mainFrame };
    expect(isTrustedIpcEvent({ sender: contents, senderFrame: mainFrame }, contents, page)).toBe(true);
    // another window's contents, even showing the same page
    const other = { mainFrame: { url: page } };
    expect(isTrustedIpcEvent({ sender: other, senderFrame: other.mainFrame }, contents, page)).toBe(false);
    // a subframe of our window showing the renderer page
    expect(isTrustedIpcEvent({ sender: contents, senderFrame: { url: page } }, contents, page)).toBe(false);
    // the frame is gone (navigated away or destroyed) by the time the call is handled
    expect(isTrustedIpcEvent({ sender: contents, senderFrame: null }, contents, page)).toBe(false);
    // our main frame, but showing something else
    const wandered = { url: 'https://example.org/' };
    expect(
      isTrustedIpcEvent({ sender: { mainFrame: wandered }, senderFrame: wandered }, { mainFrame: wandered }, page),
    ).toBe(false);
  });
});
