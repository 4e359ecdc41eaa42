import { methods, type MethodName, type ParamsOf, type ResultOf } from '../../../shared/protocol/methods';
import type { AppClient } from './appClient';

/** A typed daemon call through main's `daemon.call`; the result is checked against the shared schema here too. */
export async function daemonCall<M extends MethodName>(
  client: AppClient,
  hostId: string,
  method: M,
  params: ParamsOf<M>,
): Promise<ResultOf<M>> {
  const value = await client.call('daemon.call', { hostId, method, params });
  return methods[method].result.parse(value) as ResultOf<M>;
}
