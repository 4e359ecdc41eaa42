import { useUiStore, type Theme } from '../../state/uiStore';

const THEMES: Theme[] = ['system', 'light', 'dark'];

/**
 * Global keys: Alt+1 hosts, Alt+2 fleet, Alt+3 users, Alt+4 sessions, Alt+5 audit, Alt+6 images, "/" focuses the fleet filter, Alt+T cycles the theme, Escape goes
 * back from a VM to the fleet. Keys typed into inputs and terminals are left alone.
 */
export function installShortcuts(win: Window): () => void {
  const onKey = (e: KeyboardEvent): void => {
    // A modal dialog owns the keyboard until it closes.
    if (win.document.querySelector('[role="dialog"][aria-modal="true"]') !== null) return;
    const ui = useUiStore.getState();
    const target = e.target as HTMLElement | null;
    const typing =
      target !== null &&
      (target.isContentEditable ||
        /^(INPUT|TEXTAREA|SELECT)$/.test(target.tagName) ||
        target.closest('.xterm') !== null);
    if (e.altKey && e.key === '1') ui.show({ name: 'hosts' });
    else if (e.altKey && e.key === '2') ui.show({ name: 'fleet' });
    else if (e.altKey && e.key === '3') ui.show({ name: 'users' });
    else if (e.altKey && e.key === '4') ui.show({ name: 'history' });
    else if (e.altKey && e.key === '5') ui.show({ name: 'audit' });
    else if (e.altKey && e.key === '6') ui.show({ name: 'images' });
    else if (e.altKey && (e.key === 't' || e.key === 'T'))
      ui.setTheme(THEMES[(THEMES.indexOf(ui.theme) + 1) % THEMES.length]!);
    else if (!typing && e.key === '/') {
      ui.show({ name: 'fleet' });
      setTimeout(() => (win.document.querySelector('[data-shortcut=filter]') as HTMLInputElement | null)?.focus(), 0);
    } else if (!typing && e.key === 'Escape' && ui.view.name === 'vm') ui.show({ name: 'fleet' });
    else return;
    e.preventDefault();
  };
  win.addEventListener('keydown', onKey);
  return () => win.removeEventListener('keydown', onKey);
}

const THEME_KEY = 'firedeck.theme';

/**
 * Applies the theme as a data attribute (the CSS picks its colours from it) and keeps the operator's choice
 * for the next start.
 */
export function applyTheme(win: Window): () => void {
  const apply = (theme: Theme): void => {
    if (theme === 'system') delete win.document.documentElement.dataset.theme;
    else win.document.documentElement.dataset.theme = theme;
  };
  const saved = readSavedTheme(win);
  if (saved !== null) useUiStore.getState().setTheme(saved);
  apply(useUiStore.getState().theme);
  return useUiStore.subscribe((s, prev) => {
    if (s.theme === prev.theme) return;
    apply(s.theme);
    try {
      win.localStorage.setItem(THEME_KEY, s.theme);
    } catch {
      // storage can be off (private window); the choice then lasts until the window closes
    }
  });
}

function readSavedTheme(win: Window): Theme | null {
  try {
    const value = win.localStorage.getItem(THEME_KEY);
    return THEMES.find((t) => t === value) ?? null;
  } catch {
    return null;
  }
}
