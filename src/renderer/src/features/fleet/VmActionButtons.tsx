import type { Vm } from '../../../../shared/protocol/vm';
import { useActions } from '../../state/actionsContext';
import type { VmAction } from '../../state/fleetActions';
import { confirmVmAction } from './vmActionConfirm';

/**
 * A VM's lifecycle buttons, the same in the fleet's rows and the VM detail: what costs something is confirmed
 * first (vmActionConfirm), and the outcome arrives as a toast.
 */
export function VmActionButtons(props: {
  hostId: string;
  hostName: string;
  vm: Vm;
  /** The detail view also offers Kill (no clean shutdown); the rows keep to the everyday actions. */
  withKill?: boolean;
  /** Why the VM's host cannot be reached (its link dropped): every action is off, with this as the reason. */
  unreachable?: string | null;
}): React.JSX.Element {
  const { fleet } = useActions();
  const { vm } = props;
  const act = (action: VmAction): void => {
    void confirmVmAction(action, vm.name, props.hostName).then((ok) =>
      ok ? fleet.run(props.hostId, vm.id, action) : undefined,
    );
  };
  const running = vm.state === 'running' || vm.state === 'booting';
  const off = props.unreachable ? { disabled: true, title: `${props.hostName}: ${props.unreachable}` } : {};
  return (
    <>
      {running ? (
        <>
          <button type="button" onClick={() => act('stop')} {...off}>
            Stop
          </button>
          <button type="button" onClick={() => act('restart')} {...off}>
            Restart
          </button>
          {props.withKill ? (
            <button type="button" onClick={() => act('kill')} {...off}>
              Kill
            </button>
          ) : null}
        </>
      ) : (
        <button
          type="button"
          onClick={() => act('start')}
          disabled={vm.state === 'creating' || vm.state === 'stopping' || vm.state === 'destroying'}
          {...off}
        >
          Start
        </button>
      )}
      <button type="button" className="danger" onClick={() => act('destroy')} {...off}>
        Destroy
      </button>
    </>
  );
}
