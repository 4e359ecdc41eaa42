import { renderToStaticMarkup } from 'react-dom/server';
import { beforeEach, describe, expect, it } from 'vitest';
import type { Vm } from '../../../../shared/protocol/vm';
import type { VmStatsSample } from '../../../../shared/protocol/vmStats';
import { ActionsContext, type Actions } from '../../state/actionsContext';
import { useFleetStore } from '../../state/fleetStore';
import { FleetView, UsageCells } from '../fleet/FleetView';
import { VmUsage } from './VmDetail';

/** The usage figures rendered to HTML (no DOM here) from what the store holds. */
function render(el: React.JSX.Element): string {
  // A store hook rendered to a string reads zustand's initial state object: give it the state the test set.
  Object.assign(useFleetStore.getInitialState(), useFleetStore.getState());
  // Entities decoded, so that the expectations read as the screen does.
  return renderToStaticMarkup(<ActionsContext.Provider value={{} as Actions}>{el}</ActionsContext.Provider>)
    .replace(/&#x27;/g, "'")
    .replace(/&quot;/g, '"')
    .replace(/&amp;/g, '&');
}

/** The text of the element with this test id (its tags stripped). */
function textOf(html: string, testId: string): string {
  const start = html.indexOf(`data-testid="${testId}"`);
  if (start < 0) throw new Error(`no ${testId} in ${html}`);
  const open = html.indexOf('>', start) + 1;
  // Walk to the matching close tag.
  let depth = 1;
  let i = open;
  const tag = /<(\/?)([a-z]+)[^>]*?(\/?)>/g;
  tag.lastIndex = open;
  for (let m = tag.exec(html); m; m = tag.exec(html)) {
    if (m[3] === '/') continue;
    depth += m[1] === '/' ? -1 : 1;
    if (depth === 0) {
      i = m.index;
      break;
    }
  }
  return html.slice(open, i).replace(/<[^>]+>/g, '');
}

const vm = {
  id: 'vm-0000abcd',
  name: 'fig',
  kind: 'cli',
  driver: 'qemu',
  state: 'running',
  vcpus: 2,
  memoryMib: 256,
} as Vm;

const sample = (vcpuPercent: number, rssMib: number): VmStatsSample => ({
  vmId: vm.id,
  at: '2026-01-01T00:00:00.000Z',
  vcpus: 2,
  vcpuPercent,
  hostCpuPercent: vcpuPercent * 2,
  guestMemoryBytes: 256 * 1024 * 1024,
  hypervisorRssBytes: rssMib * 1024 * 1024,
});

beforeEach(() => {
  useFleetStore.setState({ vms: {}, stats: {} });
  useFleetStore.getState().replaceHost('local', [vm]);
});

describe("a VM's usage figures", () => {
  it('say they wait while no sample came in', () => {
    expect(render(<VmUsage hostId="local" vmId={vm.id} driver="qemu" />)).toContain(
      'Waiting for the first CPU and memory sample',
    );
  });

  it("show guest memory and the QEMU process's RSS apart, and CPU of the VM's vCPUs (VM view)", () => {
    useFleetStore.getState().applyStats([{ hostId: 'local', samples: [sample(10, 480), sample(37.2, 503)] }]);
    const html = render(<VmUsage hostId="local" vmId={vm.id} driver="qemu" />);
    expect(textOf(html, 'vm-detail-memory')).toBe('Guest memory 256 MiB · QEMU process 503 MiB RSS');
    expect(textOf(html, 'vm-detail-guest-memory')).toBe('Guest memory 256 MiB');
    expect(textOf(html, 'vm-detail-hypervisor-memory')).toBe('QEMU process 503 MiB RSS');
    expect(textOf(html, 'vm-detail-cpu')).toBe('37% of 2 vCPUs');
    // The old reading, RSS "of" the guest's size, is gone.
    expect(html).not.toMatch(/503 MiB of 256 MiB/);
    expect(html).toContain('100% = all of them busy');
  });

  it("show the vCPU share and the hypervisor's RSS in the fleet row, the configured sizes when not live", () => {
    useFleetStore.getState().applyStats([{ hostId: 'local', samples: [sample(37.2, 503)] }]);
    const row = { hostId: 'local', vm };
    let html = render(<UsageCells row={row} />);
    expect(textOf(html, 'vm-cpu-live')).toBe('37%');
    expect(textOf(html, 'vm-memory-live')).toBe('503 MiB');
    expect(html).toContain('Guest memory 256 MiB: what the VM was given');
    expect(html).toContain("CPU as a share of the VM's 2 vCPUs");

    // The column says which memory it is.
    const table = render(<FleetView />);
    expect(table).toMatch(/role="columnheader"[^>]*title="Resident memory of each VM's hypervisor process[^"]*">RSS</);
    expect(table).toMatch(/role="columnheader"[^>]*title="Share of each VM's vCPUs \(100% = all of them busy\)">CPU</);

    html = render(<UsageCells row={{ hostId: 'local', vm: { ...vm, state: 'stopped' } }} />);
    expect(textOf(html, 'vm-cpu')).toBe('2 vCPU');
    expect(textOf(html, 'vm-memory')).toBe('256 MiB guest');
  });
});
