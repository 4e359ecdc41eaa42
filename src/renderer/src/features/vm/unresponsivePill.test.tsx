import { renderToStaticMarkup } from 'react-dom/server';
import { beforeEach, describe, expect, it } from 'vitest';
import type { AppCallName, AppEvent, AppParams, AppResult } from '../../../../shared/app/contract';
import type { DaemonEvent } from '../../../../shared/protocol/events';
import type { Vm } from '../../../../shared/protocol/vm';
import type { AppClient } from '../../api/appClient';
import { ActionsContext, type Actions } from '../../state/actionsContext';
import { createFleetActions } from '../../state/fleetActions';
import { useFleetStore, vmKey } from '../../state/fleetStore';
import { UnresponsivePill } from './UnresponsivePill';
import { VmDetail } from './VmDetail';

const vm: Vm = {
  id: 'vm-0000abcd',
  name: 'wedgy',
  kind: 'cli',
  owner: 'ops',
  image: 'test',
  driver: 'qemu',
  vcpus: 1,
  memoryMib: 256,
  diskMib: 4096,
  address: '10.213.0.2',
  tap: null,
  mac: null,
  pid: 1,
  state: 'running',
  ready: ['vm'],
  createdAt: '2026-01-01T00:00:00Z',
  updatedAt: '2026-01-01T00:00:00Z',
  startedAt: '2026-01-01T00:00:00Z',
  expiresAt: null,
  lastError: null,
  unresponsiveSince: null,
};

function render(el: React.JSX.Element): string {
  // A store hook rendered to a string reads zustand's initial state object: give it the state the test set.
  Object.assign(useFleetStore.getInitialState(), useFleetStore.getState());
  return renderToStaticMarkup(<ActionsContext.Provider value={{} as Actions}>{el}</ActionsContext.Provider>);
}

/** Daemon events into the fleet actions, as the app's client delivers them. */
class EventSource implements AppClient {
  readonly transport = 'websocket' as const;
  private listener: ((e: AppEvent) => void) | null = null;
  call<N extends AppCallName>(_name: N, _params: AppParams<N>): Promise<AppResult<N>> {
    return Promise.reject(new Error('not used'));
  }
  onEvent(listener: (e: AppEvent) => void): () => void {
    this.listener = listener;
    return () => undefined;
  }
  daemon(event: DaemonEvent, seq: number): void {
    this.listener?.({
      type: 'daemon.event',
      hostId: 'local',
      envelope: { subscription: 's', seq, at: '2026-01-01T00:00:01Z', event },
    });
  }
}

beforeEach(() => {
  useFleetStore.setState({ vms: {}, stats: {} });
  useFleetStore.getState().replaceHost('local', [vm]);
});

describe('the unresponsive pill', () => {
  it('shows only while the VM has unresponsiveSince', () => {
    expect(render(<UnresponsivePill vm={vm} testId="p" />)).toBe('');
    const html = render(<UnresponsivePill vm={{ ...vm, unresponsiveSince: '2026-01-01T00:00:05Z' }} testId="p" />);
    expect(html).toContain('data-testid="p"');
    expect(html).toContain('>unresponsive</span>');
    expect(html).toContain('class="pill vm-unresponsive"');
  });

  it('comes and goes on the VM view with the vm.health events', () => {
    const source = new EventSource();
    const frames: (() => void)[] = [];
    createFleetActions(source, (fn) => frames.push(fn));
    const flush = (): void => {
      for (const f of frames.splice(0)) f();
    };
    expect(render(<VmDetail hostId="local" vmId={vm.id} tab="events" />)).not.toContain('vm-detail-unresponsive');

    source.daemon({ type: 'vm.health', vm: { ...vm, unresponsiveSince: '2026-01-01T00:00:05Z' } }, 1);
    flush();
    expect(useFleetStore.getState().vms[vmKey('local', vm.id)]?.vm.unresponsiveSince).toBe('2026-01-01T00:00:05Z');
    expect(render(<VmDetail hostId="local" vmId={vm.id} tab="events" />)).toMatch(
      /data-testid="vm-detail-unresponsive"[^>]*>unresponsive</,
    );

    source.daemon({ type: 'vm.health', vm: { ...vm, unresponsiveSince: null } }, 2);
    flush();
    expect(render(<VmDetail hostId="local" vmId={vm.id} tab="events" />)).not.toContain('vm-detail-unresponsive');
  });
});
