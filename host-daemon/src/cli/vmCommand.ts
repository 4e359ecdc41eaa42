import { parseArgs } from 'node:util';
import { FiredeckError } from '../../../src/shared/errors';
import { VmCreateParams, type Vm } from '../../../src/shared/protocol/vm';
import type { DaemonClient } from './daemonClient';
import { textTable } from './textTable';
import { resolveVm } from './vmRef';

export const VM_USAGE = `usage: firedeckd vm <command> [options]

  ls [--all] [--json]
  get <vm> [--json]
  create --name NAME --kind cli|browser --owner USER --image IMAGE [--vcpus N] [--memory MIB] [--disk MIB]
         [--no-start] [--wait] [--json]
  start <vm> [--wait]
  stop <vm> [--timeout SECONDS] [--force]
  restart <vm> [--timeout SECONDS] [--force] [--wait]
  destroy <vm>

<vm> is a VM id (vm-…) or name.
`;

function intFlag(value: string | undefined, name: string): number | undefined {
  if (value === undefined) return undefined;
  if (!/^\d{1,9}$/.test(value)) throw new FiredeckError('invalid_params', `--${name} must be a whole number`);
  return Number(value);
}

/** `firedeckd vm …`: the operator's lifecycle commands on the host. */
export async function vmCommand(client: DaemonClient, args: string[], out: NodeJS.WritableStream): Promise<number> {
  const [sub, ...rest] = args;
  const { values, positionals } = parseArgs({
    args: rest,
    options: {
      all: { type: 'boolean' },
      json: { type: 'boolean' },
      name: { type: 'string' },
      kind: { type: 'string' },
      owner: { type: 'string' },
      image: { type: 'string' },
      vcpus: { type: 'string' },
      memory: { type: 'string' },
      disk: { type: 'string' },
      'no-start': { type: 'boolean' },
      wait: { type: 'boolean' },
      timeout: { type: 'string' },
      force: { type: 'boolean' },
    },
    strict: true,
    allowPositionals: true,
  });
  const print = (vm: Vm): void => {
    out.write(values.json ? JSON.stringify(vm, null, 2) + '\n' : describe(vm));
  };
  const waitIfAsked = async (vm: Vm): Promise<Vm> =>
    values.wait ? client.call('vm.waitReady', { id: vm.id, timeoutSeconds: 600 }) : vm;
  const stopParams = (id: string): { id: string; timeoutSeconds?: number; force?: boolean } => {
    const p: { id: string; timeoutSeconds?: number; force?: boolean } = { id };
    const t = intFlag(values.timeout, 'timeout');
    if (t !== undefined) p.timeoutSeconds = t;
    if (values.force) p.force = true;
    return p;
  };

  switch (sub) {
    case 'ls':
    case 'list': {
      const vms = await client.call('vm.list', values.all ? { includeDestroyed: true } : {});
      if (values.json) out.write(JSON.stringify(vms, null, 2) + '\n');
      else out.write(table(vms));
      return 0;
    }
    case 'get':
      print(await resolveVm(client, positionals[0]));
      return 0;
    case 'create': {
      const raw = {
        name: values.name,
        kind: values.kind,
        owner: values.owner,
        image: values.image,
        vcpus: intFlag(values.vcpus, 'vcpus'),
        memoryMib: intFlag(values.memory, 'memory'),
        diskMib: intFlag(values.disk, 'disk'),
        start: !values['no-start'],
      };
      const parsed = VmCreateParams.safeParse(raw);
      if (!parsed.success) {
        const why = parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ');
        throw new FiredeckError('invalid_params', `vm create: ${why}`, { hint: VM_USAGE });
      }
      print(await waitIfAsked(await client.call('vm.create', parsed.data)));
      return 0;
    }
    case 'start': {
      const vm = await resolveVm(client, positionals[0]);
      print(await waitIfAsked(await client.call('vm.start', { id: vm.id })));
      return 0;
    }
    case 'stop': {
      const vm = await resolveVm(client, positionals[0]);
      print(await client.call('vm.stop', stopParams(vm.id)));
      return 0;
    }
    case 'restart': {
      const vm = await resolveVm(client, positionals[0]);
      print(await waitIfAsked(await client.call('vm.restart', stopParams(vm.id))));
      return 0;
    }
    case 'destroy':
    case 'rm': {
      const vm = await resolveVm(client, positionals[0]);
      print(await client.call('vm.destroy', { id: vm.id }));
      return 0;
    }
    default:
      out.write(VM_USAGE);
      return sub === undefined || sub === 'help' ? 0 : 2;
  }
}

function describe(vm: Vm): string {
  const rows: [string, string][] = [
    ['id', vm.id],
    ['name', vm.name],
    ['kind', vm.kind],
    ['owner', vm.owner],
    ['state', vm.state],
    ['ready', vm.ready.join(' ') || '-'],
    ['image', vm.image],
    ['driver', vm.driver],
    ['resources', `${vm.vcpus} vCPU, ${vm.memoryMib} MiB, ${vm.diskMib} MiB disk`],
    ['address', vm.address ?? '-'],
    ['tap', vm.tap ?? '-'],
    ['mac', vm.mac ?? '-'],
    ['pid', vm.pid === null ? '-' : String(vm.pid)],
    ['started', vm.startedAt ?? '-'],
    ['expires', vm.expiresAt ?? '-'],
  ];
  if (vm.lastError) rows.push(['last error', vm.lastError]);
  return rows.map(([k, v]) => `${k.padEnd(10)} ${v}`).join('\n') + '\n';
}

function table(vms: Vm[]): string {
  const rows = [['ID', 'NAME', 'KIND', 'STATE', 'ADDRESS', 'OWNER', 'IMAGE', 'PID']];
  for (const v of vms) {
    rows.push([
      v.id,
      v.name,
      v.kind,
      v.state,
      v.address ?? '-',
      v.owner,
      v.image,
      v.pid === null ? '-' : String(v.pid),
    ]);
  }
  return textTable(rows);
}
