import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { z } from 'zod';
import { FiredeckError } from '../../../src/shared/errors';
import { runRfbProxy } from '../vnc/rfbProxy';
import type { DaemonClient } from './daemonClient';
import { resolveVm } from './vmRef';

export const VNC_USAGE = `usage: firedeckd vnc <vm>

Carries a VNC (RFB) session between stdin/stdout and the browser VM's desktop. firedeckd authenticates to the
guest itself; the viewer is offered no authentication and never sees the VM's VNC password.
`;

/** The browser image's Xvnc port (images/browser/files/firedeck-vnc.service). */
export const GUEST_VNC_PORT = 5900;

const SecretsFile = z.object({ vncPassword: z.string().min(1).max(64) });

/**
 * The VM's VNC password from `${stateDir}/vms/<id>/secrets.json` (written 0600 by VmService at create; see
 * VmService.guestSecrets). Read here rather than asked of the daemon over RPC so that no RPC caller, the
 * app included, can ever obtain it.
 */
export function readVncPassword(stateDir: string, vmId: string, vmName: string): string {
  const file = path.join(stateDir, 'vms', vmId, 'secrets.json');
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EACCES' || code === 'EPERM') {
      throw new FiredeckError('permission_denied', `Cannot read the VNC password of ${vmName}`, {
        hint: "firedeckd vnc runs as root on the host (the VM's secrets are root-only, 0600).",
      });
    }
    throw new FiredeckError('invalid_state', `VM ${vmName} has no VNC password`, {
      hint: 'Only browser VMs created by firedeckd have one; recreate the VM.',
    });
  }
  let parsed: z.infer<typeof SecretsFile>;
  try {
    parsed = SecretsFile.parse(JSON.parse(text));
  } catch {
    throw new FiredeckError('invalid_state', `The secrets file of ${vmName} holds no valid VNC password`);
  }
  return parsed.vncPassword;
}

function connectGuest(address: string, vmName: string, timeoutMs: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: address, port: GUEST_VNC_PORT });
    socket.setNoDelay(true);
    const timer = setTimeout(() => {
      socket.destroy();
      reject(
        new FiredeckError('timeout', `No answer from the VNC server of ${vmName} at ${address}:${GUEST_VNC_PORT}`),
      );
    }, timeoutMs);
    socket.once('connect', () => {
      clearTimeout(timer);
      resolve(socket);
    });
    socket.once('error', (err) => {
      clearTimeout(timer);
      reject(
        new FiredeckError(
          'unavailable',
          `Cannot reach the VNC server of ${vmName} at ${address}:${GUEST_VNC_PORT}: ${err.message}`,
          { hint: `Is its desktop up? Watch for FIREDECK-READY vnc in: firedeckd console ${vmName}` },
        ),
      );
    });
  });
}

export interface VncIo {
  stdin: NodeJS.ReadStream;
  stdout: NodeJS.WriteStream;
  stderr: NodeJS.WriteStream;
}

/**
 * `firedeckd vnc <vm>`: raw RFB on stdin/stdout, authenticated to the browser VM's Xvnc by the host. Failures
 * go to stderr as `firedeckd vnc: <message> (<kind>)` with exit code 1; stdout carries only RFB bytes.
 */
export async function vncCommand(client: DaemonClient, args: string[], stateDir: string, io: VncIo): Promise<number> {
  if (args.length !== 1 || args[0]!.startsWith('-')) {
    io.stderr.write(VNC_USAGE);
    return args[0] === '--help' || args[0] === '-h' ? 0 : 2;
  }
  try {
    await serveVnc(client, args[0]!, stateDir, io);
    return 0;
  } catch (err) {
    const e = FiredeckError.from(err);
    io.stderr.write(`firedeckd vnc: ${e.message} (${e.kind})\n${e.hint ? `hint: ${e.hint}\n` : ''}`);
    return 1;
  }
}

async function serveVnc(client: DaemonClient, ref: string, stateDir: string, io: VncIo): Promise<void> {
  const vm = await resolveVm(client, ref);
  if (vm.kind !== 'browser') {
    throw new FiredeckError('invalid_params', `VM ${vm.name} is a ${vm.kind} VM; only browser VMs have a desktop`);
  }
  if (vm.state !== 'running' || vm.address === null) {
    throw new FiredeckError('invalid_state', `VM ${vm.name} is ${vm.state}; its desktop needs it running`, {
      hint: `Start it with: firedeckd vm start ${vm.name}`,
    });
  }
  const password = readVncPassword(stateDir, vm.id, vm.name);
  if (!vm.ready.includes('vnc')) {
    await client.call('vm.waitReady', { id: vm.id, marker: 'vnc', timeoutSeconds: 300 });
  }
  const guest = await connectGuest(vm.address, vm.name, 15_000);
  // Only the session's bytes go to stdout from here on; everything else is stderr.
  try {
    await runRfbProxy({ client: { input: io.stdin, output: io.stdout }, guest, password });
  } finally {
    guest.destroy();
    io.stdin.pause();
  }
}
