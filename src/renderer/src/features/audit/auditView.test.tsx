import { renderToStaticMarkup } from 'react-dom/server';
import { beforeEach, describe, expect, it } from 'vitest';
import { ActionsContext, type Actions } from '../../state/actionsContext';
import { NO_AUDIT_FILTER, useAuditStore } from '../../state/auditStore';
import { useHostsStore } from '../../state/hostsStore';
import { AuditView, exportFileName } from './AuditView';
import { entry } from './auditFixtures';

/** The view rendered to HTML (no DOM, no effects): what it shows for given store contents. */
function render(): string {
  for (const store of [useAuditStore, useHostsStore]) Object.assign(store.getInitialState(), store.getState());
  return renderToStaticMarkup(
    <ActionsContext.Provider value={{} as Actions}>
      <AuditView />
    </ActionsContext.Provider>,
  );
}

const host = (id: string, name: string) =>
  ({ id, name, kind: 'ssh', address: name, port: 22, user: 'root', auth: null, hostKeyFingerprint: null }) as const;
const connected = (hostId: string) =>
  ({ hostId, state: 'connected', info: null, error: null, attempt: 0, nextAttemptAt: null }) as const;

beforeEach(() => {
  useHostsStore.setState({ hosts: [host('h1', 'rig')], selectedHostId: 'h1', statuses: { h1: connected('h1') } });
  useAuditStore.setState({
    hostId: 'h1',
    filter: NO_AUDIT_FILTER,
    applied: NO_AUDIT_FILTER,
    entries: [],
    nextCursor: null,
    loading: false,
    error: null,
  });
});

describe('the audit view', () => {
  it('lists who did what on which VM or image, and how it ended', () => {
    useAuditStore.setState({
      entries: [
        entry(3, { method: 'vm.create', user: 'ops', uid: 1001, image: 'cli' }),
        entry(2, {
          method: 'image.gc',
          vmId: null,
          vmName: null,
          image: 'test',
          ok: false,
          error: { kind: 'conflict', message: 'in use by web' },
        }),
      ],
    });
    const html = render();
    expect(html).toContain('data-testid="audit-3"');
    const row3 = html.slice(html.indexOf('data-testid="audit-3"'), html.indexOf('data-testid="audit-2"'));
    expect(row3).toContain('ops<span class="muted"> (1001)</span>');
    expect(row3).toContain('vm.create');
    expect(row3).toContain('web (vm-0000000a)');
    expect(row3).toContain('cli');
    expect(row3).toContain('audit-ok');
    const row2 = html.slice(html.indexOf('data-testid="audit-2"'));
    expect(row2).toContain('<span class="pill audit-error">conflict</span>');
    expect(row2).toContain('in use by web');
    expect(html).toContain('2 entries');
    expect(html).not.toContain('Load more');
  });

  it('offers Load more while older pages remain, and the filters and export', () => {
    useAuditStore.setState({ entries: [entry(1)], nextCursor: 'c1', filter: { ...NO_AUDIT_FILTER, method: 'vm.*' } });
    const html = render();
    expect(html).toContain('Load more');
    expect(html).toContain('1 entry (more)');
    for (const label of ['Filter by user', 'Filter by method', 'Filter by VM', 'From time', 'To time'])
      expect(html).toContain(`aria-label="${label}"`);
    expect(html).toContain('value="vm.*"');
    expect(html).toContain('<option value="vm.create"></option>');
    expect(html).toContain('<option value="channel.open"></option>');
    // Read-only methods are not in the log and not offered.
    expect(html).not.toContain('<option value="vm.list"></option>');
    expect(html).toContain('Export JSON lines');
    // One host: no host picker.
    expect(html).not.toContain('aria-label="Host"');
  });

  it("says what is wrong with the daemon's hint, and when there is nothing to show", () => {
    useAuditStore.setState({ error: { kind: 'invalid_params', message: 'Not an audit.list cursor', hint: 'Reload.' } });
    let html = render();
    expect(html).toContain('role="alert"');
    expect(html).toContain('Not an audit.list cursor');
    expect(html).toContain('Reload.');
    expect(html).toContain('No audit entries on rig match.');
    useHostsStore.setState({ statuses: {} });
    useAuditStore.setState({ hostId: null, error: null });
    html = render();
    expect(html).toContain('Connect a host to read its audit log.');
  });

  it('lets the operator pick the host when several are connected', () => {
    useHostsStore.setState({
      hosts: [host('h1', 'rig'), host('h2', 'second')],
      statuses: { h1: connected('h1'), h2: connected('h2') },
    });
    const html = render();
    expect(html).toContain('aria-label="Host"');
    expect(html).toContain('<option value="h2">second</option>');
  });

  it('names an export after the host and the time, safely', () => {
    expect(exportFileName('rig one/2', new Date('2026-12-03T18:00:00.000Z'))).toBe(
      'firedeck-audit-rig-one-2-2026-12-03T18-00-00-000Z.jsonl',
    );
  });
});
