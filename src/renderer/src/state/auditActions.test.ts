import { beforeEach, describe, expect, it } from 'vitest';
import type { AppCallName, AppEvent, AppParams, AppResult } from '../../../shared/app/contract';
import { FiredeckError } from '../../../shared/errors';
import type { AuditEntry, AuditListParams, AuditListResult } from '../../../shared/protocol/audit';
import type { AppClient } from '../api/appClient';
import { entry } from '../features/audit/auditFixtures';
import { AUDIT_VIEW_PAGE, auditParams, createAuditActions } from './auditActions';
import { NO_AUDIT_FILTER, useAuditStore } from './auditStore';

/**
 * A host whose `audit.list` pages a fixed log newest first (the cursor is the last id seen, as opaque to the
 * renderer as the daemon's), recording every call; a cursor it did not issue is refused as the daemon does.
 */
class AuditHost implements AppClient {
  readonly transport = 'websocket' as const;
  readonly calls: { hostId: string; params: AuditListParams }[] = [];
  constructor(private readonly log: AuditEntry[]) {}
  call<N extends AppCallName>(name: N, params: AppParams<N>): Promise<AppResult<N>> {
    const { hostId, method, params: p } = params as { hostId: string; method: string; params: AuditListParams };
    if (name !== 'daemon.call' || method !== 'audit.list') return Promise.reject(new Error(`unexpected ${name}`));
    this.calls.push({ hostId, params: p });
    if (p.cursor !== undefined && !/^c\d+$/.test(p.cursor)) {
      return Promise.reject(new FiredeckError('invalid_params', 'Not an audit.list cursor', { hint: 'nextCursor' }));
    }
    const after = p.cursor === undefined ? Infinity : Number(p.cursor.slice(1));
    const matching = this.log
      .filter((e) => (p.user === undefined || e.user === p.user) && (p.method === undefined || e.method === p.method))
      .sort((a, b) => b.id - a.id)
      .filter((e) => e.id < after);
    const entries = matching.slice(0, p.limit ?? 100);
    const result: AuditListResult = {
      entries,
      nextCursor: matching.length > entries.length ? `c${entries.at(-1)!.id}` : null,
    };
    return Promise.resolve(result as AppResult<N>);
  }
  onEvent(_listener: (e: AppEvent) => void): () => void {
    return () => undefined;
  }
}

const log = (n: number): AuditEntry[] =>
  Array.from({ length: n }, (_, i) => entry(i + 1, i % 3 === 0 ? { user: 'ops', method: 'vm.create' } : {}));

beforeEach(() => {
  useAuditStore.setState({
    hostId: 'local',
    filter: NO_AUDIT_FILTER,
    applied: NO_AUDIT_FILTER,
    entries: [],
    nextCursor: null,
    loading: false,
    error: null,
  });
});

describe('audit actions', () => {
  it('turns the typed filter into audit.list params: blanks left out, local times as instants', () => {
    expect(auditParams(NO_AUDIT_FILTER)).toEqual({});
    const since = '2026-12-03T18:30';
    expect(auditParams({ user: ' root ', method: 'vm.*', vm: 'web', since, until: '' })).toEqual({
      user: 'root',
      method: 'vm.*',
      vm: 'web',
      since: new Date(since).toISOString(),
    });
    expect(() => auditParams({ ...NO_AUDIT_FILTER, until: 'soon' })).toThrow(FiredeckError);
  });

  it('loads the newest page, then older ones with the cursor of the filter applied, not the one being typed', async () => {
    const host = new AuditHost(log(600));
    const audit = createAuditActions(host);
    useAuditStore.getState().setFilter({ user: 'ops' });
    await audit.load();
    let s = useAuditStore.getState();
    expect(s.entries).toHaveLength(AUDIT_VIEW_PAGE);
    expect(s.entries.every((e) => e.user === 'ops')).toBe(true);
    expect(s.entries[0]!.id).toBe(598);
    expect(s.nextCursor).not.toBeNull();

    useAuditStore.getState().setFilter({ user: 'nobody' });
    await audit.loadMore();
    s = useAuditStore.getState();
    expect(host.calls.at(-1)!.params).toMatchObject({ user: 'ops', cursor: expect.any(String) });
    expect(s.entries).toHaveLength(200);
    expect(new Set(s.entries.map((e) => e.id)).size).toBe(200);
    expect(s.nextCursor).toBeNull();
  });

  it('exports the loaded entries and every remaining page as JSON lines, and keeps them', async () => {
    const host = new AuditHost(log(1200));
    const audit = createAuditActions(host);
    await audit.load();
    const text = await audit.exportJsonLines();
    const lines = text!.split('\n');
    expect(lines.pop()).toBe('');
    const ids = lines.map((l) => (JSON.parse(l) as AuditEntry).id);
    expect(ids).toEqual(Array.from({ length: 1200 }, (_, i) => 1200 - i));
    // The rest came in the largest pages the daemon serves.
    expect(host.calls.slice(1).map((c) => c.params.limit)).toEqual([500, 500, 500]);
    expect(useAuditStore.getState().entries).toHaveLength(1200);
    expect(useAuditStore.getState().nextCursor).toBeNull();
  });

  it("shows the daemon's refusal with its hint and exports nothing then", async () => {
    const audit = createAuditActions(new AuditHost(log(150)));
    await audit.load();
    useAuditStore.setState({ nextCursor: 'forged' });
    expect(await audit.exportJsonLines()).toBeNull();
    expect(useAuditStore.getState().error).toMatchObject({ kind: 'invalid_params', hint: 'nextCursor' });
    expect(useAuditStore.getState().loading).toBe(false);
  });
});
