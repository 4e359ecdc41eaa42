/**
 * The renderer's Content Security Policy, the same in Electron and web mode: only our own scripts, no eval,
 * no plugins, no framing. Inline styles stay allowed because xterm.js and noVNC set element styles.
 */
export const RENDERER_CSP = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self' 'unsafe-inline'",
  "img-src 'self' data: blob:",
  "font-src 'self' data:",
  "connect-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');
