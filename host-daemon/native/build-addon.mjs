// Compiles peercred.c into an N-API addon with the system's C compiler (CC, else cc) against Node's headers
// (from this Node's prefix, npm's nodedir, or /usr/include/node). Called by host-daemon/build.mjs, which puts the
// addon beside the bundle (dist/peercred.node; /usr/lib/firedeck/peercred.node in the package), and by the unit
// tests' global set-up. `node build-addon.mjs OUTFILE` builds it alone.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const SOURCE = fileURLToPath(new URL('./peercred.c', import.meta.url));

/** Node's C headers: the first directory that holds node_api.h. */
function nodeHeaders() {
  const candidates = [
    path.resolve(path.dirname(process.execPath), '../include/node'),
    process.env.npm_config_nodedir ? path.join(process.env.npm_config_nodedir, 'include/node') : null,
    '/usr/include/node',
  ].filter((c) => c !== null);
  const found = candidates.find((dir) => fs.existsSync(path.join(dir, 'node_api.h')));
  if (!found) {
    throw new Error(
      `cannot build the peer-credentials addon: no node_api.h in ${candidates.join(', ')}; ` +
        "install Node's headers (Debian's nodejs package ships them in /usr/include/node)",
    );
  }
  return found;
}

/**
 * Builds the addon into `outFile` (written beside it, then renamed: a running daemon keeps the file it mapped).
 * Skips the compiler when `outFile` is newer than the source and this script.
 */
export function buildPeerCredAddon(outFile) {
  const inputs = Math.max(...[SOURCE, fileURLToPath(import.meta.url)].map((f) => fs.statSync(f).mtimeMs));
  if (fs.existsSync(outFile) && fs.statSync(outFile).mtimeMs >= inputs) return outFile;
  fs.mkdirSync(path.dirname(outFile), { recursive: true });
  const tmp = `${outFile}.${process.pid}.tmp`;
  const cc = process.env.CC || 'cc';
  const args = ['-shared', '-fPIC', '-O2', '-Wall', '-Wextra', '-Werror', '-I', nodeHeaders(), '-o', tmp, SOURCE];
  try {
    execFileSync(cc, args, { stdio: ['ignore', 'inherit', 'inherit'] });
  } catch (err) {
    fs.rmSync(tmp, { force: true });
    const missing = err && typeof err === 'object' && 'code' in err && err.code === 'ENOENT';
    throw new Error(
      missing
        ? `cannot build the peer-credentials addon: no C compiler ${cc} (apt-get install gcc libc6-dev)`
        : `cannot build the peer-credentials addon: ${cc} ${args.join(' ')} failed`,
    );
  }
  fs.renameSync(tmp, outFile);
  return outFile;
}

if (process.argv[1] && fs.realpathSync(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const out = process.argv[2];
  if (!out) {
    process.stderr.write('usage: node build-addon.mjs OUTFILE\n');
    process.exit(2);
  }
  buildPeerCredAddon(path.resolve(out));
}
