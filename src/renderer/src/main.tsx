import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import { ChannelHub } from './api/channelHub';
import { pickClient } from './api/pickClient';
import { applyTheme, installShortcuts } from './features/chrome/shortcuts';
import { createAuditActions } from './state/auditActions';
import { createAuthActions } from './state/authActions';
import { createFleetActions } from './state/fleetActions';
import { webNotifier } from './features/auth/notify';
import { createHostActions } from './state/hostActions';
import { createImagesActions } from './state/imagesActions';
import { ActionsContext, type Actions } from './state/actionsContext';
import { useUiStore } from './state/uiStore';
import { App } from './App';
import './styles.css';

const client = pickClient(window);
const actions: Actions = {
  client,
  hosts: createHostActions(client),
  fleet: createFleetActions(client),
  auth: createAuthActions(client, webNotifier(window)),
  audit: createAuditActions(client),
  images: createImagesActions(client),
  channels: new ChannelHub(client),
};
void actions.hosts.refresh();
// Web mode: whatever changed while the page's socket was down is fetched again once it is back.
client.onLink?.((link) => {
  if (link === 'lost') {
    useUiStore.getState().toast('Lost the connection to Firedeck; reconnecting…', 'error');
    return;
  }
  useUiStore.getState().toast('Reconnected to Firedeck');
  void actions.hosts
    .refresh()
    .then(() =>
      Promise.all([
        actions.fleet.refreshConnected(),
        actions.auth.refreshConnected(),
        actions.images.refreshConnected(),
      ]),
    );
});
installShortcuts(window);
applyTheme(window);

createRoot(document.getElementById('root')!).render(
  <StrictMode>
    <ActionsContext.Provider value={actions}>
      <App />
    </ActionsContext.Provider>
  </StrictMode>,
);
