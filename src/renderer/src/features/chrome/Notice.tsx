import { useHostsStore } from '../../state/hostsStore';

export function Notice(): React.JSX.Element | null {
  const notice = useHostsStore((s) => s.notice);
  const dismiss = useHostsStore((s) => s.setNotice);
  if (!notice) return null;
  return (
    <div className="notice" role="alert" data-testid="notice">
      <div>
        <strong>{notice.message}</strong>
        {notice.hint ? <div className="hint">{notice.hint}</div> : null}
      </div>
      <button type="button" onClick={() => dismiss(null)} aria-label="Dismiss">
        ×
      </button>
    </div>
  );
}
