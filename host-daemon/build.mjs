// Bundles firedeckd into one CommonJS file (native better-sqlite3 stays external) for installing on hosts, and
// builds its peer-credentials addon (native/peercred.c) beside it as peercred.node.
// `node build.mjs` writes dist/firedeckd.cjs with an inline source map (development and tests);
// `node build.mjs --release --outfile FILE` writes the packaged daemon, without the map.
import { build } from 'esbuild';
import { chmodSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { buildPeerCredAddon } from './native/build-addon.mjs';

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
  // ssh2's optional native addons (sshcrypto, cpu-features) are required inside try/catch; bundled, they fail
  // that require and ssh2 uses its JavaScript ciphers, so the bundle stays one file.
  plugins: [
    {
      name: 'optional-native-addons',
      setup(b) {
        b.onResolve({ filter: /\.node$/ }, (args) => ({ path: args.path, namespace: 'optional-native' }));
        b.onLoad({ filter: /.*/, namespace: 'optional-native' }, () => ({
          contents: "throw new Error('native addon not bundled');",
          loader: 'js',
        }));
      },
    },
  ],
  banner: { js: '#!/usr/bin/env node' },
  logLevel: 'warning',
});
chmodSync(outfile, 0o755);
// `serve` refuses to run without it (src/rpc/peerCredentials.ts looks for it beside the bundle).
buildPeerCredAddon(path.join(path.dirname(outfile), 'peercred.node'));
