/**
 * Desktop notifications through the web Notifications API: the browser's own in web mode; under Electron the
 * renderer's `Notification` is shown by main as a native notification (main grants the `notifications`
 * permission to the app's own page only, see src/main/electron/hardening.ts). Permission is asked once, on the
 * first Connect (a user gesture), never at start-up.
 */
export interface DesktopNotifier {
  /** Asks for permission if it was never asked; resolves either way. */
  askOnce(): Promise<void>;
  show(title: string, body: string): void;
}

export function webNotifier(g: typeof globalThis = globalThis): DesktopNotifier {
  let asked = false;
  const api = (): typeof Notification | undefined =>
    'Notification' in g ? (g as unknown as { Notification: typeof Notification }).Notification : undefined;
  return {
    async askOnce() {
      const N = api();
      if (asked || !N || N.permission !== 'default') return;
      asked = true;
      try {
        await N.requestPermission();
      } catch {
        // A refused or unsupported request leaves the toasts.
      }
    },
    show(title, body) {
      const N = api();
      if (!N || N.permission !== 'granted') return;
      try {
        new N(title, { body, tag: title });
      } catch {
        // Some hosts (e.g. Android Chrome) only notify through a service worker: the toast stays.
      }
    },
  };
}
