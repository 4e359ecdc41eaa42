import { describe, expect, it } from 'vitest';
import { RENDERER_CSP } from '../app/csp';
import { isTrustedSender, mainWindowOptions } from './windowOptions';

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
    });
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
});
