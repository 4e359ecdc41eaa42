import type { Vm } from '../../../../shared/protocol/vm';

/**
 * "unresponsive" beside a VM's state while its hypervisor misses the daemon's health probe (QMP deadline);
 * nothing while it answers. The title says since when.
 */
export function UnresponsivePill(props: { vm: Vm; testId: string }): React.JSX.Element | null {
  const since = props.vm.unresponsiveSince;
  if (since === null || since === undefined) return null;
  return (
    <span
      className="pill vm-unresponsive"
      data-testid={props.testId}
      title={`Its hypervisor has not answered the daemon's health probe since ${new Date(since).toLocaleString()}`}
    >
      unresponsive
    </span>
  );
}
