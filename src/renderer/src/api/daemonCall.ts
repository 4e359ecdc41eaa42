import type { MethodName, ParamsOf, ResultOf } from '../../../shared/protocol/methods';
import type { AppClient } from './appClient';

/**
 * A typed daemon call through main's `daemon.call`. Main has checked the daemon's result against the shared
 * schema already (the renderer trusts main), so the result is only typed here, not parsed again.
 */
export async function daemonCall<M extends MethodName>(
  client: AppClient,
  hostId: string,
  method: M,
  params: ParamsOf<M>,
): Promise<ResultOf<M>> {
  return (await client.call('daemon.call', { hostId, method, params })) as ResultOf<M>;
}
