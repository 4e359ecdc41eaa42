import { describe, expect, it } from 'vitest';
import { FiredeckError } from '../../../src/shared/errors';
import { IdempotentCalls } from './idempotency';

const KEY = 'k7Qm2xY9pL4vN8rT';

describe('IdempotentCalls', () => {
  it('runs a keyed call once; the same call sent again gets its outcome, also while it still runs', async () => {
    const calls = new IdempotentCalls();
    let runs = 0;
    let finish!: (v: string) => void;
    const first = calls.run({ uid: 1000, key: KEY, method: 'vm.create', params: { name: 'a' } }, () => {
      runs++;
      return new Promise((resolve) => (finish = resolve));
    });
    const again = calls.run({ uid: 1000, key: KEY, method: 'vm.create', params: { name: 'a' } }, () => {
      runs++;
      return Promise.resolve('second');
    });
    expect([first.replayed, again.replayed]).toEqual([false, true]);
    finish('made');
    expect(await again.outcome).toEqual({ ok: true, result: 'made' });
    expect(await first.outcome).toEqual({ ok: true, result: 'made' });
    expect(runs).toBe(1);
  });

  it('replays a refusal, but runs again after the daemon’s own failure', async () => {
    const calls = new IdempotentCalls();
    const refuse = (): Promise<never> => Promise.reject(new FiredeckError('conflict', 'name taken'));
    const a = calls.run({ uid: 0, key: KEY, method: 'vm.create', params: {} }, refuse);
    expect(await a.outcome).toMatchObject({ ok: false, error: { kind: 'conflict' } });
    expect(calls.run({ uid: 0, key: KEY, method: 'vm.create', params: {} }, refuse).replayed).toBe(true);

    const other = 'Zz9Zz9Zz9Zz9Zz9Zz9';
    const broken = calls.run({ uid: 0, key: other, method: 'vm.start', params: {} }, () =>
      Promise.reject(new Error('disk gone')),
    );
    expect(await broken.outcome).toMatchObject({ ok: false, error: { kind: 'internal' } });
    await Promise.resolve();
    expect(calls.run({ uid: 0, key: other, method: 'vm.start', params: {} }, () => Promise.resolve(1)).replayed).toBe(
      false,
    );
  });

  it('refuses a key reused for another method or other params; keys are per OS user', async () => {
    const calls = new IdempotentCalls();
    await calls.run({ uid: 1000, key: KEY, method: 'vm.stop', params: { id: 'vm-1' } }, () => Promise.resolve(1))
      .outcome;
    expect(() =>
      calls.run({ uid: 1000, key: KEY, method: 'vm.destroy', params: { id: 'vm-1' } }, () => Promise.resolve(2)),
    ).toThrow(/used for another call \(vm\.stop/);
    expect(() =>
      calls.run({ uid: 1000, key: KEY, method: 'vm.stop', params: { id: 'vm-2' } }, () => Promise.resolve(2)),
    ).toThrow(FiredeckError);
    expect(
      calls.run({ uid: 1001, key: KEY, method: 'vm.destroy', params: {} }, () => Promise.resolve(3)).replayed,
    ).toBe(false);
  });

  it('forgets outcomes after the TTL and keeps at most `max`', async () => {
    let now = 0;
    const calls = new IdempotentCalls({ ttlMs: 1000, max: 3, now: () => now });
    const key = (i: number): string => `key-${String(i).padStart(12, '0')}`;
    for (let i = 0; i < 5; i++) calls.run({ uid: 0, key: key(i), method: 'm', params: i }, () => Promise.resolve(i));
    expect(calls.size).toBe(3);
    expect(calls.run({ uid: 0, key: key(4), method: 'm', params: 4 }, () => Promise.resolve(0)).replayed).toBe(true);
    expect(calls.run({ uid: 0, key: key(0), method: 'm', params: 0 }, () => Promise.resolve(0)).replayed).toBe(false);
    now = 5000;
    expect(calls.run({ uid: 0, key: key(4), method: 'm', params: 4 }, () => Promise.resolve(0)).replayed).toBe(false);
    expect(calls.size).toBe(1);
  });
});
