import { FiredeckError } from '../../../src/shared/errors';
import type { Vm } from '../../../src/shared/protocol/vm';
import type { DaemonClient } from './daemonClient';

/** Operators name VMs by id or by name; both resolve to the live VM. */
export async function resolveVm(client: DaemonClient, ref: string | undefined): Promise<Vm> {
  if (ref === undefined || ref === '') throw new FiredeckError('invalid_params', 'Name a VM (its id or name)');
  if (/^vm-[0-9a-f]{8,32}$/.test(ref)) return client.call('vm.get', { id: ref });
  const match = (await client.call('vm.list', {})).find((v) => v.name === ref);
  if (!match) throw new FiredeckError('not_found', `No VM named ${ref}`, { hint: 'List them with: firedeckd vm ls' });
  return match;
}
