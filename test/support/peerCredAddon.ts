import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

/**
 * The unit suites' global set-up: builds the daemon's peer-credentials addon into host-daemon/dist/, where the
 * RPC server loads it from when it runs from the TypeScript sources (a cc run of under a second, skipped when
 * the addon is newer than its source).
 */
export default function buildPeerCredAddon(): void {
  execFileSync(
    process.execPath,
    [path.join(root, 'host-daemon/native/build-addon.mjs'), path.join(root, 'host-daemon/dist/peercred.node')],
    { stdio: 'inherit' },
  );
}
