import { useEffect, useLayoutEffect, useRef, useState } from 'react';
import { Terminal } from '@xterm/xterm';
import { FitAddon } from '@xterm/addon-fit';
import { SearchAddon } from '@xterm/addon-search';
import { WebLinksAddon } from '@xterm/addon-web-links';
import '@xterm/xterm/css/xterm.css';
import { useChannel, type ChannelHandle } from '../../state/useChannel';
import { useUiStore } from '../../state/uiStore';
import { ChannelStatus } from '../channel/ChannelStatus';

/**
 * One shell into a CLI VM (`firedeckd shell` with a pty). Output is acknowledged only once xterm has parsed
 * it, so a flood waits in the pipe instead of in memory. Reconnecting reuses the terminal: scrollback stays.
 */
export function TerminalPane(props: { hostId: string; vmId: string; active: boolean }): React.JSX.Element {
  const host = useRef<HTMLDivElement>(null);
  const term = useRef<Terminal | null>(null);
  const fit = useRef<FitAddon | null>(null);
  const search = useRef<SearchAddon | null>(null);
  /** The stream as of the last render, for xterm's input and resize handlers (set up once). */
  const io = useRef<ChannelHandle | null>(null);
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
    const input = t.onData((data) => io.current?.write(data));
    const resize = t.onResize(({ cols, rows }) => io.current?.resize(cols, rows));
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

  // After the terminal exists (effects run in order): the shell opens with the terminal's size.
  const channel = useChannel({
    hostId: props.hostId,
    vmId: props.vmId,
    kind: 'shell',
    size: () => (term.current ? { cols: term.current.cols, rows: term.current.rows } : null),
    onData: (bytes) => new Promise<void>((parsed) => (term.current ? term.current.write(bytes, parsed) : parsed())),
  });
  useLayoutEffect(() => {
    io.current = channel;
  });

  // The scrollback tells where one session ended and the next began.
  const session = useRef<'none' | 'open' | 'ended'>('none');
  const state = channel.status.state;
  useEffect(() => {
    const t = term.current;
    if (!t) return;
    if (state === 'open') {
      session.current = 'open';
      if (props.active) t.focus();
    } else if (state === 'opening') {
      if (session.current === 'ended') t.write('\r\n\x1b[2m[reconnecting…]\x1b[0m\r\n');
    } else {
      if (session.current === 'open') t.write('\r\n\x1b[2m[session closed]\x1b[0m\r\n');
      session.current = 'ended';
    }
    // Only a change of state writes or focuses: `props.active` is left out on purpose (the next effect's).
  }, [state]);

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
        <ChannelStatus status={channel.status} onReconnect={channel.reconnect} testId="terminal-state" />
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
