import { useEffect, useMemo, useRef, useState } from 'react';
import { useChannel } from '../../state/useChannel';
import { ChannelStatus } from '../channel/ChannelStatus';
import { ConsoleBuffer } from './consoleBuffer';
import { downloadText } from '../chrome/downloadText';

const LINE_HEIGHT = 18;

/** The VM's serial console: follows new output, searchable, downloadable; only visible lines are rendered. */
export function ConsoleLog(props: { hostId: string; vmId: string; vmName: string; live: boolean }): React.JSX.Element {
  const [buffer, setBuffer] = useState(() => new ConsoleBuffer());
  const [version, setVersion] = useState(0);
  const [follow, setFollow] = useState(true);
  const [query, setQuery] = useState('');
  const [matchIndex, setMatchIndex] = useState(0);
  const [scrollTop, setScrollTop] = useState(0);
  const [height, setHeight] = useState(400);
  const viewport = useRef<HTMLDivElement>(null);
  /** The buffer the current connection fills, and the next frame, which renders and acknowledges what came. */
  const filling = useRef(buffer);
  const frame = useRef<Promise<void> | null>(null);

  const channel = useChannel({
    hostId: props.hostId,
    vmId: props.vmId,
    kind: 'console',
    // A stopped VM has no console to follow: then its log so far is shown and the channel ends.
    follow: props.live,
    // Each connection starts from the daemon's tail again, so the view starts from an empty buffer.
    onOpen: () => {
      const fresh = new ConsoleBuffer();
      filling.current = fresh;
      setBuffer(fresh);
      return undefined;
    },
    // Rendered (and acknowledged) once per frame: the stream is held back until the view has caught up.
    onData: (bytes) => {
      const into = filling.current;
      into.push(bytes);
      frame.current ??= new Promise<void>((rendered) =>
        requestAnimationFrame(() => {
          frame.current = null;
          setVersion(into.version);
          rendered();
        }),
      );
      return frame.current;
    },
  });

  useEffect(() => {
    const el = viewport.current;
    if (!el) return;
    const observer = new ResizeObserver(() => setHeight(el.clientHeight));
    observer.observe(el);
    return () => observer.disconnect();
  }, []);

  const total = buffer.length;
  useEffect(() => {
    const el = viewport.current;
    if (follow && el) el.scrollTop = el.scrollHeight;
  }, [version, follow, total]);

  // `version` changes whenever the buffer grew, so matches are recomputed for new lines.
  const matches = useMemo(() => buffer.search(query), [buffer, query, version]);
  const current = matches.length > 0 ? matches[Math.min(matchIndex, matches.length - 1)]! : -1;
  const jump = (delta: number): void => {
    if (matches.length === 0) return;
    const next = (Math.min(matchIndex, matches.length - 1) + delta + matches.length) % matches.length;
    setMatchIndex(next);
    setFollow(false);
    const el = viewport.current;
    if (el) el.scrollTop = Math.max(0, matches[next]! * LINE_HEIGHT - height / 2);
  };
  const download = (): void => downloadText(document, `${props.vmName}-console.log`, buffer.text());

  const first = Math.max(0, Math.floor(scrollTop / LINE_HEIGHT) - 20);
  const last = Math.min(total, Math.ceil((scrollTop + height) / LINE_HEIGHT) + 20);
  const lines: React.JSX.Element[] = [];
  for (let i = first; i < last; i++) {
    lines.push(
      <div
        key={i}
        className={i === current ? 'line match' : 'line'}
        style={{ top: i * LINE_HEIGHT, height: LINE_HEIGHT }}
      >
        {buffer.line(i) || ' '}
      </div>,
    );
  }

  return (
    <div className="console-log">
      <div className="toolbar">
        <ChannelStatus status={channel.status} onReconnect={channel.reconnect} testId="console-state" />
        <label className="check">
          <input type="checkbox" checked={follow} onChange={(e) => setFollow(e.target.checked)} /> follow
        </label>
        <input
          type="search"
          placeholder="Search the log"
          value={query}
          onChange={(e) => {
            setQuery(e.target.value);
            setMatchIndex(0);
          }}
          onKeyDown={(e) => {
            if (e.key === 'Enter') jump(e.shiftKey ? -1 : 1);
          }}
          aria-label="Search the console log"
        />
        <span className="count" data-testid="console-search-count">
          {query
            ? `${matches.length === 0 ? 0 : Math.min(matchIndex, matches.length - 1) + 1}/${matches.length}`
            : `${total} lines`}
        </span>
        <button type="button" onClick={() => jump(-1)} disabled={matches.length === 0} aria-label="Previous match">
          ↑
        </button>
        <button type="button" onClick={() => jump(1)} disabled={matches.length === 0} aria-label="Next match">
          ↓
        </button>
        <button type="button" onClick={download}>
          Download
        </button>
      </div>
      <div
        className="console-viewport mono"
        ref={viewport}
        data-testid="console-log"
        onScroll={(e) => {
          const el = e.currentTarget;
          setScrollTop(el.scrollTop);
          const atBottom = el.scrollHeight - el.scrollTop - el.clientHeight < LINE_HEIGHT * 2;
          if (!atBottom && follow) setFollow(false);
        }}
      >
        <div style={{ height: total * LINE_HEIGHT, position: 'relative' }}>{lines}</div>
      </div>
    </div>
  );
}
