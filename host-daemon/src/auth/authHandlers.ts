import type { RpcServer } from '../rpc/server';
import type { AuthService } from './authService';

/** Registers every `auth.*` method; the actor of a move is the OS user the kernel named for the connection. */
export function registerAuthHandlers(server: RpcServer, auth: AuthService, reconciled: Promise<unknown>): void {
  const after = async <T>(fn: () => T | Promise<T>): Promise<T> => {
    await reconciled;
    return fn();
  };
  server.register('auth.start', (p, { caller }) => after(() => auth.start(p, caller.user)));
  server.register('auth.get', (p) => auth.get(p.id));
  server.register('auth.list', (p) => auth.list(p));
  server.register('auth.cancel', (p, { caller }) => after(() => auth.cancel(p.id, caller.user)));
  server.register('auth.retry', (p, { caller }) => after(() => auth.retry(p.id, caller.user)));
  server.register('auth.submitCode', (p, { caller }) => after(() => auth.submitCode(p.id, p.code, caller.user)));
}
