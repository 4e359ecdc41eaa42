import { describe, expect, it } from 'vitest';
import { webNotifier } from './notify';

/** A stand-in for the web Notifications API (the page's own global): records what it was asked. */
function notificationsApi(initial: NotificationPermission, answer: NotificationPermission = 'granted') {
  const shown: { title: string; body: string | undefined; tag: string | undefined }[] = [];
  let requests = 0;
  class FakeNotification {
    static permission: NotificationPermission = initial;
    static requestPermission(): Promise<NotificationPermission> {
      requests++;
      FakeNotification.permission = answer;
      return Promise.resolve(answer);
    }
    constructor(title: string, options?: NotificationOptions) {
      shown.push({ title, body: options?.body, tag: options?.tag });
    }
    close(): void {
      // as the real one has
    }
  }
  const g = { Notification: FakeNotification } as unknown as typeof globalThis;
  return { g, shown, requests: () => requests };
}

describe('webNotifier', () => {
  it('asks for permission once, however often Connect is pressed, then shows notifications', async () => {
    const api = notificationsApi('default');
    const n = webNotifier(api.g);
    n.show('Login completed', 'before any answer');
    expect(api.shown).toEqual([]);
    await n.askOnce();
    await n.askOnce();
    await n.askOnce();
    expect(api.requests()).toBe(1);
    n.show('Login completed', 'ada · Codex: written to ada-cli and verified');
    expect(api.shown).toEqual([
      { title: 'Login completed', body: 'ada · Codex: written to ada-cli and verified', tag: 'Login completed' },
    ]);
  });

  it('never asks again after a refusal, and shows nothing then (the toast stays)', async () => {
    const api = notificationsApi('default', 'denied');
    const n = webNotifier(api.g);
    await n.askOnce();
    await n.askOnce();
    expect(api.requests()).toBe(1);
    n.show('Login failed', 'why');
    expect(api.shown).toEqual([]);
    const already = notificationsApi('denied');
    await webNotifier(already.g).askOnce();
    expect(already.requests()).toBe(0);
  });

  it('does nothing where there is no Notifications API, or where it throws', async () => {
    const none = webNotifier({} as typeof globalThis);
    await expect(none.askOnce()).resolves.toBeUndefined();
    expect(() => none.show('t', 'b')).not.toThrow();
    class Throwing {
      static permission = 'granted';
      constructor() {
        throw new TypeError('Illegal constructor: use ServiceWorkerRegistration.showNotification()');
      }
      close(): void {
        // never reached
      }
    }
    expect(() => webNotifier({ Notification: Throwing } as unknown as typeof globalThis).show('t', 'b')).not.toThrow();
  });
});
