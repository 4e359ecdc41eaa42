import type { LinkState, LinkStatus } from '../../api/channelLink';

/** The same word for the same state in the console, the terminal and the desktop. */
export const LINK_WORDS: Record<LinkState, string> = {
  opening: 'connecting',
  open: 'connected',
  closed: 'closed',
  failed: 'failed',
  disconnected: 'disconnected',
};

/** A stream's status in a view's toolbar: the state, why it ended, and Reconnect once it has. */
export function ChannelStatus(props: { status: LinkStatus; onReconnect(): void; testId: string }): React.JSX.Element {
  const { status } = props;
  const error = status.state === 'failed' || status.state === 'disconnected' ? status.error : null;
  const ended = status.state === 'closed' || error !== null;
  return (
    <span className="channel-status" role="status">
      <span className={`pill link-${status.state}`} data-testid={props.testId}>
        {LINK_WORDS[status.state]}
      </span>
      {error ? (
        <span className="row-error" data-testid={`${props.testId}-reason`}>
          {error.message}
          {error.hint ? <span className="muted"> {error.hint}</span> : null}
        </span>
      ) : null}
      {ended ? (
        <button type="button" onClick={props.onReconnect}>
          Reconnect
        </button>
      ) : null}
    </span>
  );
}
