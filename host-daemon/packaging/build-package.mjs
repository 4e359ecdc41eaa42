#!/usr/bin/env node
// `npm run package:daemon`: firedeckd as a Debian package and a tarball of the same tree, for the CPU and Node
// major of this machine (the native SQLite module is the one node_modules holds, built for this Node):
//   release/daemon/firedeckd_<version>_<arch>.deb
//   release/daemon/firedeckd-<version>-linux-<arch>-node<major>.tar.gz   (unpack with tar -C /, then host-setup)
// Layout: /usr/bin/firedeckd → /usr/lib/firedeck/firedeckd.cjs (+ peercred.node, node_modules/better-sqlite3, images/,
// host-setup),
// /usr/lib/systemd/system/firedeckd.service, /etc/firedeck/firedeckd.conf (a conffile: every setting at its default).
import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const require = createRequire(import.meta.url);
const { nativeModuleProblems, findNativeModules, readNativeModule } = require('../../build/nativeModules.cjs');

const here = path.dirname(fileURLToPath(import.meta.url));
const daemonDir = path.resolve(here, '..');
const root = path.resolve(daemonDir, '..');
const { values } = parseArgs({ options: { out: { type: 'string' } } });
const outDir = path.resolve(values.out ?? path.join(root, 'release', 'daemon'));

/** Recipes the suites use that a host has no use for. */
const TEST_ONLY_RECIPES = new Set(['host']);
/** The JavaScript better-sqlite3 needs at run time; prebuild-install only runs at npm install. */
const RUNTIME_MODULES = ['better-sqlite3', 'bindings', 'file-uri-to-path'];

function fail(message) {
  process.stderr.write(`package:daemon: ${message}\n`);
  process.exit(1);
}

function run(file, args, options = {}) {
  return execFileSync(file, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], ...options });
}

const version = JSON.parse(fs.readFileSync(path.join(daemonDir, 'package.json'), 'utf8')).version;
const debArch = run('dpkg', ['--print-architecture']).trim();
const nodeArch = { amd64: 'x64', arm64: 'arm64' }[debArch] ?? fail(`unsupported architecture ${debArch}`);
if (nodeArch !== process.arch) fail(`dpkg says ${debArch} but this Node is ${process.arch}`);
const nodeMajor = Number(process.versions.node.split('.')[0]);
const abi = Number(process.versions.modules);

fs.mkdirSync(outDir, { recursive: true });
const stage = fs.mkdtempSync(path.join(outDir, '.stage-'));
process.on('exit', () => fs.rmSync(stage, { recursive: true, force: true }));
const lib = path.join(stage, 'usr/lib/firedeck');
fs.mkdirSync(lib, { recursive: true });

// 1. The daemon, bundled without its source map, and its peer-credentials addon beside it (built here by cc; N-API,
//    so any Node of this CPU loads it). Nothing is compiled on the host: the package runs no build as root.
run(process.execPath, [path.join(daemonDir, 'build.mjs'), '--release', '--outfile', path.join(lib, 'firedeckd.cjs')]);
const addon = readNativeModule(path.join(lib, 'peercred.node'));
if (!addon.napi || !addon.archs.includes(nodeArch)) {
  fail(`peercred.node is not an N-API module for ${nodeArch} (${addon.archs.join('+') || 'unknown CPU'})`);
}

// 2. better-sqlite3 and what it requires at run time, as node_modules holds them (built by npm for this Node).
for (const name of RUNTIME_MODULES) {
  const src = path.dirname(require.resolve(`${name}/package.json`, { paths: [daemonDir] }));
  const dest = path.join(lib, 'node_modules', name);
  const keep = (p) => {
    const rel = path.relative(src, p);
    if (name !== 'better-sqlite3') return !/(^|\/)(\.[^/]*|test|README\.md|History\.md|[^/]*\.d\.ts)$/.test(rel);
    return (
      rel === '' ||
      /^(package\.json|LICENSE|lib(\/.*)?|build|build\/Release|build\/Release\/better_sqlite3\.node)$/.test(rel)
    );
  };
  fs.cpSync(src, dest, { recursive: true, filter: keep });
}
const problems = nativeModuleProblems(path.join(lib, 'node_modules'), {
  abi,
  arch: nodeArch,
  runtime: `Node ${process.versions.node}`,
});
if (findNativeModules(path.join(lib, 'node_modules')).length !== 1) problems.push('expected exactly one .node file');
if (problems.length > 0) {
  fail(
    `the native SQLite module is not built for this Node:\n  ${problems.join('\n  ')}\n` +
      'electron-builder rebuilds node_modules/better-sqlite3 in place for Electron: run `npm rebuild better-sqlite3`',
  );
}
// Loads from the staged tree alone (nothing from the repository's node_modules).
run(
  process.execPath,
  [
    '-e',
    "const D = require('better-sqlite3'); new D(':memory:').prepare('select sqlite_version()').pluck().get();" +
      "const m = { exports: {} }; process.dlopen(m, require('path').resolve('peercred.node'));" +
      "if (typeof m.exports.peerCredentials !== 'function') throw new Error('peercred.node exports no peerCredentials');",
  ],
  { cwd: lib, env: { PATH: process.env.PATH, NODE_PATH: '' } },
);

// 3. Image recipes, so `firedeckd image build cli|browser|test` works on the host.
for (const entry of fs.readdirSync(path.join(root, 'images'))) {
  if (TEST_ONLY_RECIPES.has(entry)) continue;
  fs.cpSync(path.join(root, 'images', entry), path.join(lib, 'images', entry), { recursive: true });
}

// 4. Host set-up, systemd unit, the command on PATH, the documented config file.
fs.copyFileSync(path.join(here, 'host-setup'), path.join(lib, 'host-setup'));
const unitDir = path.join(stage, 'usr/lib/systemd/system');
fs.mkdirSync(unitDir, { recursive: true });
fs.copyFileSync(path.join(daemonDir, 'systemd/firedeckd.service'), path.join(unitDir, 'firedeckd.service'));
fs.mkdirSync(path.join(stage, 'usr/bin'), { recursive: true });
fs.symlinkSync('../lib/firedeck/firedeckd.cjs', path.join(stage, 'usr/bin/firedeckd'));
fs.mkdirSync(path.join(stage, 'etc/firedeck'), { recursive: true });
fs.writeFileSync(
  path.join(stage, 'etc/firedeck/firedeckd.conf'),
  run(process.execPath, [path.join(lib, 'firedeckd.cjs'), 'config', 'default'], {
    env: { PATH: process.env.PATH, FIREDECK_CONFIG: '/dev/null' },
  }),
);
const doc = path.join(stage, 'usr/share/doc/firedeckd');
fs.mkdirSync(doc, { recursive: true });
fs.writeFileSync(
  path.join(doc, 'copyright'),
  `firedeckd ${version}: the Firedeck host daemon. License: ${JSON.parse(fs.readFileSync(path.join(daemonDir, 'package.json'), 'utf8')).license}.\n` +
    'Bundled: better-sqlite3, bindings, file-uri-to-path (MIT; see usr/lib/firedeck/node_modules/*/LICENSE*), zod (MIT).\n',
);
fs.chmodSync(stage, 0o755);
normaliseModes(stage);

// 5. The tarball: the same tree, owned by root.
const tarball = path.join(outDir, `firedeckd-${version}-linux-${nodeArch}-node${nodeMajor}.tar.gz`);
run('tar', ['-C', stage, '--sort=name', '--owner=0', '--group=0', '--numeric-owner', '-czf', tarball, 'etc', 'usr']);

// 6. The Debian package.
const debian = path.join(stage, 'DEBIAN');
fs.mkdirSync(debian);
const installedKiB = Number(run('du', ['-sk', '--apparent-size', stage]).split('\t')[0]);
const control = {
  Package: 'firedeckd',
  Version: version,
  Architecture: debArch,
  Maintainer: 'Firedeck <firedeck@localhost>',
  'Installed-Size': String(installedKiB),
  // The native module is built for this Node major's ABI; another major would refuse to load it.
  Depends: [
    `nodejs (>= ${nodeMajor})`,
    `nodejs (<< ${nodeMajor + 1})`,
    'qemu-system-x86 | firecracker',
    'qemu-utils',
    'e2fsprogs',
    'iproute2',
    'nftables',
    'openssh-client',
    'util-linux',
    'passwd',
  ].join(', '),
  Recommends: 'mmdebstrap',
  Suggests: 'npm',
  Section: 'admin',
  Priority: 'optional',
  Description:
    'Firedeck host daemon: microVMs for AI command-line tools\n' +
    ' firedeckd runs CLI and browser microVMs (Firecracker or QEMU) for Codex, Claude\n' +
    ' Code and Gemini CLI, builds their golden images and moves credentials into them.\n' +
    ' The Firedeck console reaches it over SSH (firedeckd dial-stdio); members of the\n' +
    ' group firedeck may use its socket. Check a host with: firedeckd doctor',
};
fs.writeFileSync(
  path.join(debian, 'control'),
  `${Object.entries(control)
    .map(([k, v]) => `${k}: ${v}`)
    .join('\n')}\n`,
);
fs.writeFileSync(path.join(debian, 'conffiles'), '/etc/firedeck/firedeckd.conf\n');
for (const script of ['postinst', 'prerm', 'postrm']) {
  fs.copyFileSync(path.join(here, 'debian', script), path.join(debian, script));
  fs.chmodSync(path.join(debian, script), 0o755);
}
fs.writeFileSync(path.join(debian, 'md5sums'), md5sums(stage));
const deb = path.join(outDir, `firedeckd_${version}_${debArch}.deb`);
run('dpkg-deb', ['--root-owner-group', '-Zxz', '--build', stage, deb], { stdio: ['ignore', 'ignore', 'inherit'] });

for (const file of [deb, tarball]) {
  process.stdout.write(`${path.relative(process.cwd(), file)}  ${(fs.statSync(file).size / 1024).toFixed(0)} KiB\n`);
}

/** Directories and executables 0755, everything else 0644: nothing of the umask or the source tree leaks in. */
function normaliseModes(dir) {
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isSymbolicLink()) continue;
    if (e.isDirectory()) {
      fs.chmodSync(p, 0o755);
      normaliseModes(p);
    } else {
      const executable = (fs.statSync(p).mode & 0o111) !== 0 || p.endsWith('.node');
      fs.chmodSync(p, executable ? 0o755 : 0o644);
    }
  }
}

function md5sums(dir) {
  const lines = [];
  const walk = (d) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
      const p = path.join(d, e.name);
      const rel = path.relative(dir, p);
      if (rel === 'DEBIAN') continue;
      if (e.isDirectory()) walk(p);
      else if (e.isFile() && !rel.startsWith('etc/')) {
        lines.push(`${crypto.createHash('md5').update(fs.readFileSync(p)).digest('hex')}  ${rel}`);
      }
    }
  };
  walk(dir);
  return `${lines.join('\n')}\n`;
}
