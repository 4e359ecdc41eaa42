import { useUiStore, type Theme } from '../../state/uiStore';

const THEMES: Theme[] = ['system', 'light', 'dark'];

/**
 * Global keys: Alt+1 hosts, Alt+2 fleet, "/" focuses the fleet filter, Alt+T cycles the theme, Escape goes
 * back from a VM to the fleet. Keys typed into inputs and terminals are left alone.
 */
export function installShortcuts(win: Window): () => void {
  const onKey = (e: KeyboardEvent): void => {
    const ui = useUiStore.getState();
    const target = e.target as HTMLElement | null;
    const typing =
      target !== null &&
      (target.isContentEditable ||
        /^(INPUT|TEXTAREA|SELECT)$/.test(target.tagName) ||
        target.closest('.xterm') !== null);
    if (e.altKey && e.key === '1') ui.show({ name: 'hosts' });
    else if (e.altKey && e.key === '2') ui.show({ name: 'fleet' });
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

/** Applies the theme as a data attribute (the CSS picks its colours from it). */
export function applyTheme(win: Window): () => void {
  const apply = (theme: Theme): void => {
    if (theme === 'system') delete win.document.documentElement.dataset.theme;
    else win.document.documentElement.dataset.theme = theme;
  };
  apply(useUiStore.getState().theme);
  return useUiStore.subscribe((s, prev) => {
    if (s.theme !== prev.theme) apply(s.theme);
  });
}
