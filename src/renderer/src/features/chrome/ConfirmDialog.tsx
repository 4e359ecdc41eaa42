import { useEffect, useRef } from 'react';
import { useConfirmStore } from '../../state/confirmStore';

/** The confirmation for destructive or lossy actions; Escape or Cancel declines, the named button goes ahead. */
export function ConfirmDialog(): React.JSX.Element | null {
  const pending = useConfirmStore((s) => s.pending);
  const answer = useConfirmStore((s) => s.answer);
  const cancel = useRef<HTMLButtonElement>(null);
  const go = useRef<HTMLButtonElement>(null);

  useEffect(() => {
    if (!pending) return;
    (pending.danger ? cancel : go).current?.focus();
    // Escape declines wherever the focus is (the global shortcuts stand aside while a modal is open).
    const onKey = (e: KeyboardEvent): void => {
      if (e.key !== 'Escape') return;
      e.preventDefault();
      answer(false);
    };
    window.addEventListener('keydown', onKey, true);
    return () => window.removeEventListener('keydown', onKey, true);
  }, [pending, answer]);

  if (!pending) return null;
  return (
    <div className="modal-backdrop" onClick={() => answer(false)}>
      <div
        className="modal"
        role="dialog"
        aria-modal="true"
        aria-labelledby="confirm-title"
        onClick={(e) => e.stopPropagation()}
      >
        <h3 id="confirm-title">{pending.title}</h3>
        {pending.detail ? <p>{pending.detail}</p> : null}
        <div className="modal-actions">
          <button type="button" ref={cancel} onClick={() => answer(false)}>
            Cancel
          </button>
          <button type="button" ref={go} className={pending.danger ? 'danger' : 'primary'} onClick={() => answer(true)}>
            {pending.confirmLabel}
          </button>
        </div>
      </div>
    </div>
  );
}
