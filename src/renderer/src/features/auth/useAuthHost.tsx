import { useState } from 'react';
import { useHostsStore } from '../../state/hostsStore';

/** The connected hosts, and which of them the auth views show (the selected host while it is connected). */
export function useAuthHost(): {
  hostId: string | null;
  connected: { id: string; name: string }[];
  choose(hostId: string): void;
} {
  const hosts = useHostsStore((s) => s.hosts);
  const statuses = useHostsStore((s) => s.statuses);
  const selected = useHostsStore((s) => s.selectedHostId);
  const [chosen, choose] = useState<string | null>(null);
  const connected = hosts.filter((h) => statuses[h.id]?.state === 'connected').map((h) => ({ id: h.id, name: h.name }));
  const pick = [chosen, selected].find((id) => id !== null && connected.some((h) => h.id === id));
  return { hostId: pick ?? connected[0]?.id ?? null, connected, choose };
}

export function HostPicker(props: {
  hostId: string;
  connected: { id: string; name: string }[];
  choose(hostId: string): void;
}): React.JSX.Element | null {
  if (props.connected.length < 2) return null;
  return (
    <select value={props.hostId} onChange={(e) => props.choose(e.target.value)} aria-label="Host">
      {props.connected.map((h) => (
        <option key={h.id} value={h.id}>
          {h.name}
        </option>
      ))}
    </select>
  );
}
