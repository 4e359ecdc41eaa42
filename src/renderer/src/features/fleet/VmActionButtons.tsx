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
}): React.JSX.Element {
  const { fleet } = useActions();
  const { vm } = props;
  const act = (action: VmAction): void => {
    void confirmVmAction(action, vm.name, props.hostName).then((ok) =>
      ok ? fleet.run(props.hostId, vm.id, action) : undefined,
    );
  };
  const running = vm.state === 'running' || vm.state === 'booting';
  return (
    <>
      {running ? (
        <>
          <button type="button" onClick={() => act('stop')}>
            Stop
          </button>
          <button type="button" onClick={() => act('restart')}>
            Restart
          </button>
          {props.withKill ? (
            <button type="button" onClick={() => act('kill')}>
              Kill
            </button>
          ) : null}
        </>
      ) : (
        <button
          type="button"
          onClick={() => act('start')}
          disabled={vm.state === 'creating' || vm.state === 'stopping' || vm.state === 'destroying'}
        >
          Start
        </button>
      )}
      <button type="button" className="danger" onClick={() => act('destroy')}>
        Destroy
      </button>
    </>
  );
}
