import { FiredeckError } from '../../../src/shared/errors';
import type { OfflineDiskWriter } from '../credentials/offlineDisk';
import { writeCredentialOffline, writeCredentialOnline } from '../credentials/transfer';
import type { VmService } from '../vms/vmService';
import type { CredentialWriter } from './authService';

/**
 * The daemon's credential writer: into a running CLI VM over its sshd, or into a stopped one's disk under the VM's
 * lock (so nothing boots it meanwhile). A running VM's disk is never written.
 */
export function createCredentialWriter(deps: { vms: VmService; offlineDisks: OfflineDiskWriter }): CredentialWriter {
  return {
    online: (target, payload) => writeCredentialOnline({ target, payload }),
    offline: (vmId, payload) =>
      deps.vms.withStoppedDisk(vmId, 'credential write', async (disk, stillStopped) => {
        if (disk.format !== 'raw') {
          throw new FiredeckError('invalid_state', 'A qcow2 overlay disk cannot be written offline', {
            hint: 'Start the CLI VM and retry: the credential then goes in over its sshd.',
          });
        }
        return writeCredentialOffline({
          writer: deps.offlineDisks,
          image: disk.path,
          payload,
          vmStopped: stillStopped,
        });
      }),
  };
}
