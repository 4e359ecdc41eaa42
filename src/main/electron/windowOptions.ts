import type { BrowserWindowConstructorOptions } from 'electron';

/**
 * The main window's options. The renderer gets no Node, runs sandboxed and isolated from the preload, and
 * keeps web security on; the preload is its only way to main. Middle-click (`auxclick`) is off, so that a
 * middle click on a link cannot start a navigation or a new window past the click handlers.
 */
export function mainWindowOptions(preloadPath: string): BrowserWindowConstructorOptions {
  return {
    width: 1280,
    height: 820,
    minWidth: 900,
    minHeight: 560,
    show: false,
    title: 'Firedeck',
    autoHideMenuBar: true,
    webPreferences: {
      preload: preloadPath,
      sandbox: true,
      contextIsolation: true,
      nodeIntegration: false,
      nodeIntegrationInWorker: false,
      nodeIntegrationInSubFrames: false,
      webSecurity: true,
      allowRunningInsecureContent: false,
      experimentalFeatures: false,
      webviewTag: false,
      navigateOnDragDrop: false,
      spellcheck: false,
      disableBlinkFeatures: 'Auxclick',
    },
  };
}

/** Whether a message came from our own renderer page in the window's main frame. */
export function isTrustedSender(frameUrl: string | undefined, isMainFrame: boolean, rendererUrl: string): boolean {
  if (!isMainFrame || frameUrl === undefined) return false;
  try {
    const actual = new URL(frameUrl);
    const expected = new URL(rendererUrl);
    return (
      actual.protocol === expected.protocol && actual.host === expected.host && actual.pathname === expected.pathname
    );
  } catch {
    return false;
  }
}

/** What the IPC trust check reads of a frame (Electron's `WebFrameMain` has it). */
export interface FrameView {
  readonly url: string;
}

/**
 * Whether an IPC call may be served: it was sent by the window's own web contents, from its main frame (not a
 * subframe, not a frame already gone), while that frame shows our renderer page.
 */
export function isTrustedIpcEvent(
  event: { readonly sender: unknown; readonly senderFrame: FrameView | null },
  contents: { readonly mainFrame: FrameView },
  rendererUrl: string,
): boolean {
  const frame = event.senderFrame;
  return (
    event.sender === contents && frame !== null && isTrustedSender(frame.url, frame === contents.mainFrame, rendererUrl)
  );
}
