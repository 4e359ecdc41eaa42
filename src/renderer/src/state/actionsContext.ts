import { createContext, useContext } from 'react';
import type { AppClient } from '../api/appClient';
import type { ChannelHub } from '../api/channelHub';
import type { AuditActions } from './auditActions';
import type { AuthActions } from './authActions';
import type { FleetActions } from './fleetActions';
import type { HostActions } from './hostActions';
import type { ImagesActions } from './imagesActions';

/** Side effects the views may trigger; created once at start-up, outside React. */
export interface Actions {
  client: AppClient;
  hosts: HostActions;
  fleet: FleetActions;
  auth: AuthActions;
  audit: AuditActions;
  images: ImagesActions;
  channels: ChannelHub;
}

export const ActionsContext = createContext<Actions | null>(null);

export function useActions(): Actions {
  const actions = useContext(ActionsContext);
  if (!actions) throw new Error('useActions outside ActionsContext');
  return actions;
}

export function useChannels(): ChannelHub {
  return useActions().channels;
}
