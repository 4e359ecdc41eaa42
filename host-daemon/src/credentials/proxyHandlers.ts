import { FiredeckError } from '../../../src/shared/errors';
import type { ProxyView } from '../../../src/shared/protocol/proxy';
import type { Caller, RpcServer } from '../rpc/server';
import type { ProxySettings, ProxySettingsInput } from './proxySettings';

/** The part of the vault the proxy methods use. */
export interface ProxyVault {
  getProxy(): ProxySettings | null;
  putProxy(input: ProxySettingsInput): ProxySettings;
  clearProxy(): void;
}

/**
 * `proxy.get` for any member of the socket's group (the answer is redacted); `proxy.set` and `proxy.clear` for
 * root only: the proxy decides where every browser VM's traffic goes, and its URL may carry a password. The
 * settings reach browser VMs created afterwards, through their config drives.
 */
export function registerProxyHandlers(server: RpcServer, vault: ProxyVault): void {
  server.register('proxy.get', () => proxyView(vault.getProxy()));
  server.register('proxy.set', (params, { caller }) => {
    mustBeRoot(caller, 'set');
    const input: ProxySettingsInput = {
      ...(params.http !== undefined ? { http: params.http } : {}),
      ...(params.https !== undefined ? { https: params.https } : {}),
      ...(params.noProxy !== undefined ? { noProxy: params.noProxy } : {}),
    };
    return proxyView(vault.putProxy(input));
  });
  server.register('proxy.clear', (_params, { caller }) => {
    mustBeRoot(caller, 'clear');
    vault.clearProxy();
    return proxyView(null);
  });
}

export function proxyView(settings: ProxySettings | null): ProxyView {
  if (settings === null) return { configured: false, http: null, https: null, noProxy: [] };
  return { configured: true, ...settings.redacted() };
}

function mustBeRoot(caller: Caller, verb: string): void {
  if (caller.uid === 0) return;
  throw new FiredeckError(
    'permission_denied',
    `Only root may ${verb} the browser VMs' proxy (you are ${caller.user})`,
    {
      hint: `Run it on the host as root: sudo firedeckd proxy ${verb === 'set' ? 'set < proxy.json' : 'clear'}`,
    },
  );
}
