import type { NewVm } from '../vmStore';

/** A stopped CLI VM's row for tests that need one in the store; `fields` overrides any column. */
export function newVm(id: string, name: string, fields: Partial<NewVm> = {}): NewVm {
  return {
    id,
    name,
    kind: 'cli',
    owner: 'alice',
    image: 'test',
    driver: 'qemu',
    vcpus: 1,
    memoryMib: 256,
    diskMib: 1024,
    sessionId: null,
    expiresAt: null,
    ...fields,
  };
}
