import fs from 'node:fs';
import type net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { FiredeckError } from '../../../src/shared/errors';

/** Who connected to a unix socket, as the kernel recorded it at connect time (SO_PEERCRED). */
export interface PeerCredentials {
  uid: number;
  gid: number;
  pid: number;
}

/** Reads the peer's credentials of an accepted unix-socket connection; throws when the kernel gives none. */
export type PeerCredentialReader = (socket: net.Socket) => PeerCredentials;

/** The addon's file name; host-daemon/native/build-addon.mjs builds it beside the bundle. */
export const PEERCRED_ADDON = 'peercred.node';

const FIX =
  'rebuild the daemon (npm run build -w host-daemon, which needs cc and Node headers) or reinstall the firedeckd ' +
  'package, which ships the addon as /usr/lib/firedeck/peercred.node';

/**
 * Where the addon is: beside the running bundle (host-daemon/dist/, /usr/lib/firedeck/), or in host-daemon/dist/
 * when this module runs from its TypeScript source (the unit tests; their global set-up builds it there).
 */
export function peerCredAddonPath(): string {
  if (__filename.endsWith('.ts')) return path.resolve(__dirname, '../../dist', PEERCRED_ADDON);
  return path.join(__dirname, PEERCRED_ADDON);
}

/**
 * Loads the addon and returns the reader the RPC server uses on every accepted connection. Without it the
 * daemon cannot know who calls it, and it refuses to serve rather than take a client's word for it.
 */
export function loadPeerCredentials(file = peerCredAddonPath()): PeerCredentialReader {
  if (!fs.existsSync(file)) {
    throw new FiredeckError('unavailable', `firedeckd cannot tell who calls it: the addon ${file} is missing`, {
      hint: FIX,
    });
  }
  const mod: { exports: unknown } = { exports: {} };
  try {
    process.dlopen(mod, file, os.constants.dlopen.RTLD_NOW);
  } catch (err) {
    throw new FiredeckError(
      'unavailable',
      `firedeckd cannot tell who calls it: the addon ${file} does not load: ${err instanceof Error ? err.message : String(err)}`,
      { hint: FIX, cause: err },
    );
  }
  const exported = (mod.exports as { peerCredentials?: unknown }).peerCredentials;
  if (typeof exported !== 'function') {
    throw new FiredeckError('unavailable', `firedeckd cannot tell who calls it: ${file} has no peerCredentials`, {
      hint: FIX,
    });
  }
  const byFd = exported as (fd: number) => PeerCredentials;
  return (socket) => byFd(socketFd(socket));
}

/** The file descriptor of an accepted unix-socket connection (libuv's pipe handle on Linux). */
function socketFd(socket: net.Socket): number {
  const fd = (socket as unknown as { _handle?: { fd?: unknown } | null })._handle?.fd;
  if (typeof fd !== 'number' || !Number.isInteger(fd) || fd < 0) {
    throw new FiredeckError('internal', 'the connection has no file descriptor to ask the kernel about');
  }
  return fd;
}
