import type { Host, HostStatus } from '../../../../shared/app/contract';

/** The one line that says where the console is connected, or why it is not. */
export function connectionText(host: Host | undefined, status: HostStatus | undefined): string {
  if (!host) return 'no host';
  if (!status) return `${host.name}: not connected`;
  switch (status.state) {
    case 'connected':
      return status.info
        ? `connected to ${status.info.hostname} — firedeckd ${status.info.version}`
        : `connected to ${host.name}`;
    case 'connecting':
      return `connecting to ${host.name}…`;
    case 'reconnecting':
      return `reconnecting to ${host.name} (attempt ${status.attempt})…`;
    case 'failed':
      return `${host.name}: ${status.error?.message ?? 'connection failed'}`;
    case 'disconnected':
      return `${host.name}: not connected`;
  }
}
