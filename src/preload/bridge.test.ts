import { describe, expect, it } from 'vitest';
import { IPC_CALL_CHANNEL, IPC_EVENT_CHANNEL, appCallNames, type AppEvent } from '../shared/app/contract';
import { buildBridge, type IpcPort } from './bridge';

describe('preload bridge', () => {
  const calls: unknown[][] = [];
  let eventListener: ((payload: unknown) => void) | null = null;
  const ipc: IpcPort = {
    invoke: (...args) => {
      calls.push(args);
      return Promise.resolve({ ok: true, value: null });
    },
    on: (channel, listener) => {
      expect(channel).toBe(IPC_EVENT_CHANNEL);
      eventListener = listener;
      return () => {
        eventListener = null;
      };
    },
  };
  const bridge = buildBridge(ipc);

  it('exposes exactly the contract calls plus onEvent, all functions, frozen', () => {
    expect(Object.keys(bridge).sort()).toEqual([...appCallNames, 'onEvent'].sort());
    for (const value of Object.values(bridge)) expect(typeof value).toBe('function');
    expect(Object.isFrozen(bridge)).toBe(true);
    expect('invoke' in bridge || 'send' in bridge || 'ipcRenderer' in bridge).toBe(false);
  });

  it('sends each named call on the one call channel with its own name', async () => {
    await bridge['hosts.connect']({ hostId: 'local' });
    expect(calls.at(-1)).toEqual([IPC_CALL_CHANNEL, 'hosts.connect', { hostId: 'local' }]);
  });

  it('delivers events to listeners and unsubscribes', () => {
    const seen: AppEvent[] = [];
    const off = bridge.onEvent((e) => seen.push(e));
    eventListener!({ type: 'hosts.changed' });
    expect(seen).toEqual([{ type: 'hosts.changed' }]);
    off();
    expect(eventListener).toBeNull();
  });
});
