import { useState } from 'react';
import { TerminalPane } from './TerminalPane';

/** Several shells into one CLI VM; hidden tabs stay alive with their scrollback. */
export function TerminalTabs(props: {
  hostId: string;
  vmId: string;
  live: boolean;
  /** Hidden tabs keep their shells: the VM detail shows another of its tabs meanwhile. */
  visible: boolean;
}): React.JSX.Element | null {
  const [tabs, setTabs] = useState<number[]>([1]);
  const [active, setActive] = useState(1);
  const add = (): void => {
    const id = Math.max(0, ...tabs) + 1;
    setTabs([...tabs, id]);
    setActive(id);
  };
  const close = (id: number): void => {
    const rest = tabs.filter((t) => t !== id);
    setTabs(rest);
    if (active === id && rest.length > 0) setActive(rest[rest.length - 1]!);
  };
  if (!props.live) {
    return props.visible ? <div className="empty">The VM is not running: start it to open a shell.</div> : null;
  }
  return (
    <div className="terminal-tabs" style={props.visible ? undefined : { display: 'none' }}>
      <div className="tabs" role="tablist">
        {tabs.map((id) => (
          <span key={id} className={id === active ? 'tab active' : 'tab'}>
            <button type="button" role="tab" aria-selected={id === active} onClick={() => setActive(id)}>
              shell {id}
            </button>
            <button type="button" className="close" aria-label={`Close shell ${id}`} onClick={() => close(id)}>
              ×
            </button>
          </span>
        ))}
        <button type="button" onClick={add} aria-label="New shell">
          +
        </button>
      </div>
      {tabs.map((id) => (
        <TerminalPane key={id} hostId={props.hostId} vmId={props.vmId} active={props.visible && id === active} />
      ))}
    </div>
  );
}
