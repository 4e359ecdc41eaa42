import { confirmAction, type ConfirmRequest } from '../../state/confirmStore';
import type { VmAction } from '../../state/fleetActions';

/** What each lifecycle action costs, in the words the confirmation shows; start costs nothing and is not asked. */
export function vmActionConfirmation(action: VmAction, vmName: string, hostName: string): ConfirmRequest | null {
  const on = `${vmName} on ${hostName}`;
  switch (action) {
    case 'start':
      return null;
    case 'stop':
      return {
        title: `Stop ${on}?`,
        detail: 'The guest shuts down cleanly; open shells and desktops end.',
        confirmLabel: 'Stop',
      };
    case 'restart':
      return { title: `Restart ${on}?`, detail: 'Open shells and desktops end.', confirmLabel: 'Restart' };
    case 'kill':
      return {
        title: `Kill ${on}?`,
        detail: 'The hypervisor is ended at once, without a clean shutdown: unsaved writes in the guest are lost.',
        confirmLabel: 'Kill',
        danger: true,
      };
    case 'destroy':
      return {
        title: `Destroy ${on}?`,
        detail: 'The VM and its disk are deleted. This cannot be undone.',
        confirmLabel: 'Destroy',
        danger: true,
      };
  }
}

/** Asks when the action needs it; true means go ahead. */
export function confirmVmAction(action: VmAction, vmName: string, hostName: string): Promise<boolean> {
  const request = vmActionConfirmation(action, vmName, hostName);
  return request ? confirmAction(request) : Promise.resolve(true);
}
