import { beforeEach, describe, expect, it } from 'vitest';
import { confirmAction, useConfirmStore } from './confirmStore';

describe('confirmStore', () => {
  beforeEach(() => useConfirmStore.getState().answer(false));

  it('resolves with the answer and clears the dialog', async () => {
    const asked = confirmAction({ title: 'Destroy a?', confirmLabel: 'Destroy', danger: true });
    expect(useConfirmStore.getState().pending?.title).toBe('Destroy a?');
    useConfirmStore.getState().answer(true);
    await expect(asked).resolves.toBe(true);
    expect(useConfirmStore.getState().pending).toBeNull();
  });

  it('a newer request cancels the older one', async () => {
    const first = confirmAction({ title: 'Stop a?', confirmLabel: 'Stop' });
    const second = confirmAction({ title: 'Stop b?', confirmLabel: 'Stop' });
    await expect(first).resolves.toBe(false);
    expect(useConfirmStore.getState().pending?.title).toBe('Stop b?');
    useConfirmStore.getState().answer(false);
    await expect(second).resolves.toBe(false);
    expect(useConfirmStore.getState().pending).toBeNull();
  });
});
