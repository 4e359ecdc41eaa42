import { create } from 'zustand';

/** What a confirmation asks: the question, what is lost, and the words on the button that goes ahead. */
export interface ConfirmRequest {
  title: string;
  detail?: string;
  confirmLabel: string;
  /** Destructive: the button is red and Cancel has the focus, so Enter alone does not destroy anything. */
  danger?: boolean;
}

interface PendingConfirm extends ConfirmRequest {
  id: number;
  settle(ok: boolean): void;
}

/**
 * UI state: the one confirmation on screen. An in-app dialog rather than `window.confirm`, which blocks the
 * renderer (events and channel output stall behind it) and looks foreign in Electron.
 */
export interface ConfirmState {
  pending: PendingConfirm | null;
  /** Resolves true when the operator goes ahead; a newer request cancels an older one (false). */
  ask(request: ConfirmRequest): Promise<boolean>;
  answer(ok: boolean): void;
}

let nextId = 1;

export const useConfirmStore = create<ConfirmState>()((set, get) => ({
  pending: null,
  ask: (request) =>
    new Promise<boolean>((resolve) => {
      get().pending?.settle(false);
      const id = nextId++;
      set({
        pending: {
          ...request,
          id,
          settle: (ok) => {
            if (get().pending?.id === id) set({ pending: null });
            resolve(ok);
          },
        },
      });
    }),
  answer: (ok) => get().pending?.settle(ok),
}));

/** For side-effect code outside React: asks and waits. */
export function confirmAction(request: ConfirmRequest): Promise<boolean> {
  return useConfirmStore.getState().ask(request);
}
