// Bundles firedeckd into one CommonJS file (native better-sqlite3 stays external) for installing on hosts.
// `node build.mjs` writes dist/firedeckd.cjs with an inline source map (development and tests);
// `node build.mjs --release --outfile FILE` writes the packaged daemon, without the map.
import { build } from 'esbuild';
import { chmodSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const { values } = parseArgs({ options: { release: { type: 'boolean' }, outfile: { type: 'string' } } });
const outfile = values.outfile ?? fileURLToPath(new URL('./dist/firedeckd.cjs', import.meta.url));
await build({
  entryPoints: [fileURLToPath(new URL('./src/main.ts', import.meta.url))],
  outfile,
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'cjs',
  sourcemap: values.release ? false : 'inline',
  external: ['better-sqlite3'],
  banner: { js: '#!/usr/bin/env node' },
  logLevel: 'warning',
});
chmodSync(outfile, 0o755);
