import type { AuditEntry } from '../../../../shared/protocol/audit';

/** Audit entries for the audit view's tests: `n` is the id and the second of the time. */
export function entry(n: number, patch: Partial<AuditEntry> = {}): AuditEntry {
  return {
    id: n,
    at: new Date(Date.UTC(2026, 11, 3, 18, 0, n)).toISOString(),
    user: 'root',
    uid: 0,
    method: 'vm.start',
    vmId: 'vm-0000000a',
    vmName: 'web',
    image: null,
    params: { id: 'vm-0000000a' },
    ok: true,
    error: null,
    ...patch,
  };
}
