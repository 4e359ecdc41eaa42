import { create } from 'zustand';
import type { SortKey } from './fleetStore';

export type VmTab = 'console' | 'terminal' | 'desktop' | 'events';
export type View =
  | { name: 'hosts' }
  | { name: 'fleet' }
  | { name: 'vm'; hostId: string; vmId: string; tab?: VmTab }
  | { name: 'users' }
  | { name: 'history' }
  | { name: 'audit' }
  | { name: 'images' }
  | { name: 'auth'; hostId: string; sessionId: string };
export type Theme = 'system' | 'light' | 'dark';

export interface Toast {
  id: number;
  text: string;
  tone: 'ok' | 'error';
}

/** UI state only: where the operator is and how lists are shown. */
export interface UiState {
  view: View;
  theme: Theme;
  fleetFilter: string;
  fleetStateFilter: string;
  /** A host's id to show only its VMs; empty for every host. */
  fleetHostFilter: string;
  fleetSort: { key: SortKey; dir: 1 | -1 };
  toasts: Toast[];
  show(view: View): void;
  setTheme(theme: Theme): void;
  setFleetFilter(text: string): void;
  setFleetStateFilter(state: string): void;
  setFleetHostFilter(hostId: string): void;
  sortBy(key: SortKey): void;
  toast(text: string, tone?: Toast['tone']): void;
  dismissToast(id: number): void;
}

let nextToast = 1;

export const useUiStore = create<UiState>()((set) => ({
  view: { name: 'hosts' },
  theme: 'system',
  fleetFilter: '',
  fleetStateFilter: '',
  fleetHostFilter: '',
  fleetSort: { key: 'name', dir: 1 },
  toasts: [],
  show: (view) => set({ view }),
  setTheme: (theme) => set({ theme }),
  setFleetFilter: (fleetFilter) => set({ fleetFilter }),
  setFleetStateFilter: (fleetStateFilter) => set({ fleetStateFilter }),
  setFleetHostFilter: (fleetHostFilter) => set({ fleetHostFilter }),
  sortBy: (key) =>
    set((s) => ({ fleetSort: { key, dir: s.fleetSort.key === key ? (-s.fleetSort.dir as 1 | -1) : 1 } })),
  toast: (text, tone = 'ok') => {
    const id = nextToast++;
    set((s) => ({ toasts: [...s.toasts.slice(-4), { id, text, tone }] }));
    setTimeout(() => set((s) => ({ toasts: s.toasts.filter((t) => t.id !== id) })), 5000);
  },
  dismissToast: (id) => set((s) => ({ toasts: s.toasts.filter((t) => t.id !== id) })),
}));
