import { useEffect, useRef, useState } from 'react';
import { Terminal } from '@xterm/xterm';
import { FitAddon } from '@xterm/addon-fit';
import { SearchAddon } from '@xterm/addon-search';
import { WebLinksAddon } from '@xterm/addon-web-links';
import '@xterm/xterm/css/xterm.css';
import { FiredeckError } from '../../../../shared/errors';
import type { RendererChannel } from '../../api/channelHub';
import { useChannels } from '../../state/actionsContext';
import { useUiStore } from '../../state/uiStore';

type LinkState = 'connecting' | 'connected' | 'closed' | 'failed';

/**
 * One shell into a CLI VM (`firedeckd shell` with a pty). Output is acknowledged only once xterm has parsed
 * it, so a flood waits in the pipe instead of in memory. Reconnecting reuses the terminal: scrollback stays.
 */
export function TerminalPane(props: { hostId: string; vmId: string; active: boolean }): React.JSX.Element {
  const hub = useChannels();
  const host = useRef<HTMLDivElement>(null);
  const term = useRef<Terminal | null>(null);
  const fit = useRef<FitAddon | null>(null);
  const search = useRef<SearchAddon | null>(null);
  const channel = useRef<RendererChannel | null>(null);
  const [state, setState] = useState<{ link: LinkState; error?: string }>({ link: 'connecting' });
  const [attempt, setAttempt] = useState(0);
  const [query, setQuery] = useState('');

  useEffect(() => {
    const t = new Terminal({
      cursorBlink: true,
      scrollback: 10_000,
      fontFamily: 'ui-monospace, "DejaVu Sans Mono", monospace',
      fontSize: 13,
      theme: { background: '#111417' },
    });
    const f = new FitAddon();
    const s = new SearchAddon();
    t.loadAddon(f);
    t.loadAddon(s);
    // A link opens in the operator's own browser (Electron hands http(s) URLs to the system; nothing else opens).
    t.loadAddon(new WebLinksAddon((_event, uri) => window.open(uri, '_blank', 'noopener,noreferrer')));
    // Ctrl+Shift+C copies the selection (Ctrl+C stays the guest's interrupt); Ctrl+Shift+V is left to the
    // browser, whose paste event xterm.js takes as a paste.
    t.attachCustomKeyEventHandler((e) => {
      if (e.type !== 'keydown' || !e.ctrlKey || !e.shiftKey) return true;
      if (e.code === 'KeyC') {
        const selection = t.getSelection();
        if (selection) void navigator.clipboard.writeText(selection).catch(() => undefined);
        e.preventDefault();
        return false;
      }
      return e.code !== 'KeyV';
    });
    t.open(host.current!);
    f.fit();
    term.current = t;
    fit.current = f;
    search.current = s;
    const input = t.onData((data) => channel.current?.write(data));
    const resize = t.onResize(({ cols, rows }) => channel.current?.resize(cols, rows));
    const observer = new ResizeObserver(() => {
      if (host.current && host.current.clientWidth > 0) f.fit();
    });
    observer.observe(host.current!);
    return () => {
      observer.disconnect();
      input.dispose();
      resize.dispose();
      t.dispose();
      term.current = null;
    };
  }, []);

  useEffect(() => {
    const t = term.current;
    if (!t) return;
    let cancelled = false;
    setState({ link: 'connecting' });
    if (attempt > 0) t.write('\r\n\x1b[2m[reconnecting…]\x1b[0m\r\n');
    hub
      .open({ hostId: props.hostId, kind: 'shell', vmId: props.vmId, cols: t.cols, rows: t.rows })
      .then((ch) => {
        if (cancelled) {
          ch.close();
          return;
        }
        channel.current = ch;
        setState({ link: 'connected' });
        ch.onData((bytes) => t.write(bytes, () => ch.ack(bytes.length)));
        ch.onClose((error) => {
          channel.current = null;
          if (cancelled) return;
          t.write('\r\n\x1b[2m[session closed]\x1b[0m\r\n');
          setState(error ? { link: 'failed', error: error.message } : { link: 'closed' });
        });
        t.focus();
      })
      .catch((err: unknown) => {
        if (!cancelled) setState({ link: 'failed', error: FiredeckError.from(err).message });
      });
    return () => {
      cancelled = true;
      channel.current?.close();
      channel.current = null;
    };
  }, [hub, props.hostId, props.vmId, attempt]);

  useEffect(() => {
    if (props.active) {
      fit.current?.fit();
      term.current?.focus();
    }
  }, [props.active]);

  // After Copy or Paste the keyboard goes back to the shell.
  const paste = async (): Promise<void> => {
    try {
      const text = await navigator.clipboard.readText();
      if (text) term.current?.paste(text);
    } catch {
      useUiStore.getState().toast('The clipboard cannot be read here: paste with Ctrl+Shift+V instead.', 'error');
    }
    term.current?.focus();
  };
  const copy = (): void => {
    const sel = term.current?.getSelection();
    if (sel) {
      navigator.clipboard
        .writeText(sel)
        .catch(() => useUiStore.getState().toast('The clipboard cannot be written here.', 'error'));
    }
    term.current?.focus();
  };

  return (
    <div className="terminal-pane" style={{ display: props.active ? 'flex' : 'none' }}>
      <div className="toolbar">
        <span className={`pill link-${state.link}`} data-testid="terminal-state">
          {state.link}
        </span>
        {state.error ? <span className="row-error">{state.error}</span> : null}
        {state.link === 'closed' || state.link === 'failed' ? (
          <button type="button" onClick={() => setAttempt((a) => a + 1)}>
            Reconnect
          </button>
        ) : null}
        <button type="button" onClick={copy}>
          Copy
        </button>
        <button type="button" onClick={() => void paste()}>
          Paste
        </button>
        <input
          type="search"
          placeholder="Find in terminal"
          value={query}
          onChange={(e) => setQuery(e.target.value)}
          onKeyDown={(e) => {
            if (e.key === 'Enter') {
              if (e.shiftKey) search.current?.findPrevious(query);
              else search.current?.findNext(query);
            }
          }}
          aria-label="Find in terminal"
        />
      </div>
      <div className="terminal-host" ref={host} data-testid="terminal" />
    </div>
  );
}
