import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { FiredeckError } from '../../../src/shared/errors';
import type { DaemonClient } from './daemonClient';
import { resolveVm } from './vmRef';

export const GUEST_USER = 'firedeck';

/**
 * ssh's argv for a shell in a CLI VM: the host-held key, the guest's pinned host key, nothing else trusted.
 * The pinned key reaches ssh through KnownHostsCommand, so no temp file is left behind when the session is
 * cut (an SSH exec channel closing kills this process with SIGHUP).
 */
export function shellSshArgs(opts: {
  address: string;
  keyPath: string;
  hostKey: string;
  tty: boolean;
  command: string[];
}): string[] {
  if (!/^[a-z0-9-]+ [A-Za-z0-9+/]+={0,3}$/.test(opts.hostKey) || !/^[0-9.]+$/.test(opts.address)) {
    throw new FiredeckError('invalid_state', 'The VM record holds a malformed address or host key');
  }
  return [
    '-i',
    opts.keyPath,
    '-o',
    'IdentitiesOnly=yes',
    '-o',
    'IdentityAgent=none',
    '-o',
    'UserKnownHostsFile=/dev/null',
    '-o',
    `KnownHostsCommand=/bin/echo ${opts.address} ${opts.hostKey}`,
    '-o',
    'GlobalKnownHostsFile=/dev/null',
    '-o',
    'StrictHostKeyChecking=yes',
    '-o',
    'PasswordAuthentication=no',
    '-o',
    'BatchMode=yes',
    '-o',
    'ConnectTimeout=10',
    '-o',
    'LogLevel=ERROR',
    opts.tty ? '-t' : '-T',
    `${GUEST_USER}@${opts.address}`,
    ...(opts.command.length > 0 ? ['--', ...opts.command] : []),
  ];
}

/** `firedeckd shell <vm> [-- command…]`: ssh into a CLI VM as `firedeck`, window size passed through by ssh. */
export async function shellCommand(client: DaemonClient, args: string[], stateDir: string): Promise<number> {
  const dash = args.indexOf('--');
  const ref = args[0];
  const command = dash === -1 ? args.slice(1) : args.slice(dash + 1);
  const vm = await resolveVm(client, ref);
  if (vm.kind !== 'cli')
    throw new FiredeckError('invalid_params', `VM ${vm.name} is a ${vm.kind} VM; shells are for CLI VMs`);
  if (vm.state !== 'running' || vm.address === null) {
    throw new FiredeckError('invalid_state', `VM ${vm.name} is ${vm.state}; a shell needs it running`);
  }
  if (!vm.hostKey) {
    throw new FiredeckError('unavailable', `VM ${vm.name} has not announced its SSH host key yet`, {
      hint: 'Wait for it: firedeckd vm start --wait, or watch firedeckd console.',
    });
  }
  if (!vm.ready.includes('sshd')) {
    await client.call('vm.waitReady', { id: vm.id, marker: 'sshd', timeoutSeconds: 120 });
  }
  const keyPath = path.join(stateDir, 'keys', 'guest_ed25519');
  try {
    fs.accessSync(keyPath, fs.constants.R_OK);
  } catch {
    throw new FiredeckError('permission_denied', `Cannot read the host's guest key ${keyPath}`, {
      hint: 'firedeckd shell runs as root on the host (the key is root-only, 0600).',
    });
  }
  const child = spawn(
    'ssh',
    shellSshArgs({ address: vm.address, keyPath, hostKey: vm.hostKey, tty: process.stdin.isTTY === true, command }),
    { stdio: 'inherit' },
  );
  return new Promise<number>((resolve, reject) => {
    child.once('error', (err) => reject(new FiredeckError('unavailable', `Cannot run ssh: ${err.message}`)));
    child.once('exit', (code, signal) => resolve(code ?? (signal ? 128 + (os.constants.signals[signal] ?? 0) : 1)));
  });
}
