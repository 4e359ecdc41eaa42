import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../rig/daemon';
import { makeTempDir } from '../rig/tmp';
import { ensureAppBuilt } from '../e2e/support/webMode';

/**
 * electron-builder itself, run on this repository with the real config, against a stand-in for Electron's
 * download (which this machine cannot fetch): a directory whose `electron` is a small script carrying Electron's
 * fuse wire. So the file matching, asar packing, unpacking of native modules, the afterPack hook and the fuse
 * flipping are electron-builder's own; only the binary and the native rebuild (Electron's headers are a download
 * too) are not real. The rebuild being off leaves the modules built for Node, which the ABI check must refuse.
 */
const require = createRequire(import.meta.url);
const asar = require('@electron/asar') as {
  listPackage: (archive: string, o: { isPack: boolean }) => string[];
  extractAll: (archive: string, dest: string) => void;
};
const fuses = require('@electron/fuses') as { getCurrentFuseWire: (file: string) => Promise<Record<number, number>> };
const { PROFILES } = require('../../build/electronFuses.cjs') as {
  PROFILES: Record<'release' | 'test', Record<string, boolean>>;
};

/** Electron's own defaults, as its binaries ship them: RunAsNode, NODE_OPTIONS, --inspect and file:// privileges on. */
const DEFAULT_WIRE = '10110001';
const SENTINEL = 'dL7pKGdnNz796PbbjQWNKmHXBZaB9tsX';

let work: string;
let fakeElectron: string;

interface Build {
  status: number;
  output: string;
  appDir: string;
}

/** `electron-builder --linux dir --x64` with the real config and a few overrides, in a child process like npm run package. */
function build(name: string, options: { fuses: 'release' | 'test'; afterPack: boolean }): Build {
  const out = path.join(work, name);
  const config = path.join(work, `${name}.config.cjs`);
  fs.writeFileSync(
    config,
    `const base = require(${JSON.stringify(path.join(REPO_ROOT, 'build/electron-builder.config.cjs'))});\n` +
      `module.exports = { ...base, electronDist: ${JSON.stringify(fakeElectron)}, npmRebuild: false,` +
      ` directories: { ...base.directories, output: ${JSON.stringify(out)} }${options.afterPack ? '' : ', afterPack: null'} };\n`,
  );
  const res = spawnSync(
    process.execPath,
    [
      require.resolve('electron-builder/cli.js'),
      '--projectDir',
      REPO_ROOT,
      '--config',
      config,
      '--linux',
      'dir',
      '--x64',
    ],
    {
      cwd: REPO_ROOT,
      encoding: 'utf8',
      env: { ...process.env, FIREDECK_FUSES: options.fuses, CI: '1' },
      timeout: 180_000,
    },
  );
  return { status: res.status ?? -1, output: `${res.stdout}\n${res.stderr}`, appDir: path.join(out, 'linux-unpacked') };
}

function verify(appDir: string, profile: 'release' | 'test'): { status: number; output: string } {
  const res = spawnSync(
    process.execPath,
    [path.join(REPO_ROOT, 'build/scripts/verify-package.mjs'), '--app', appDir, '--fuses', profile],
    {
      encoding: 'utf8',
    },
  );
  return { status: res.status ?? -1, output: `${res.stdout}${res.stderr}` };
}

let release: Build;
let testProfile: Build;

beforeAll(async () => {
  await ensureAppBuilt();
  work = makeTempDir('packaging-app');
  fakeElectron = path.join(work, 'electron-dist');
  fs.mkdirSync(path.join(fakeElectron, 'resources'), { recursive: true });
  fs.mkdirSync(path.join(fakeElectron, 'locales'));
  fs.writeFileSync(path.join(fakeElectron, 'locales', 'en-US.pak'), '');
  fs.writeFileSync(path.join(fakeElectron, 'LICENSE'), 'stand-in\n');
  fs.writeFileSync(
    path.join(fakeElectron, 'version'),
    `${(require('electron/package.json') as { version: string }).version}\n`,
  );
  fs.writeFileSync(
    path.join(fakeElectron, 'electron'),
    Buffer.concat([
      Buffer.from(`#!/bin/sh\n# ${SENTINEL}`),
      Buffer.from([1, DEFAULT_WIRE.length]),
      Buffer.from(`${DEFAULT_WIRE}\nexit 0\n`),
    ]),
    { mode: 0o755 },
  );
  release = build('release', { fuses: 'release', afterPack: false });
  testProfile = build('test', { fuses: 'test', afterPack: false });
}, 600_000);

afterAll(() => {
  if (work) fs.rmSync(work, { recursive: true, force: true });
});

describe('electron-builder with the real config (stand-in Electron)', () => {
  it('packs the app', () => {
    expect(release.status, release.output).toBe(0);
    expect(testProfile.status, testProfile.output).toBe(0);
    expect(fs.existsSync(path.join(release.appDir, 'firedeck'))).toBe(true);
  });

  it('flips the release fuses into the binary, and the test profile keeps only --inspect', async () => {
    const wire = async (appDir: string): Promise<string> => {
      const w = await fuses.getCurrentFuseWire(path.join(appDir, 'firedeck'));
      return Array.from({ length: DEFAULT_WIRE.length }, (_, i) => String.fromCharCode(w[i]!)).join('');
    };
    // RunAsNode, cookies, NODE_OPTIONS, --inspect, asar integrity, only-asar, V8 snapshot, file:// privileges.
    expect(await wire(release.appDir)).toBe('01001101');
    expect(await wire(testProfile.appDir)).toBe('01011101');
    expect(PROFILES.test.enableNodeCliInspectArguments).toBe(true);
  });

  it('packages out/ and production dependencies only: no dev dependencies, tests, sources, maps or the daemon', () => {
    const files = asar.listPackage(path.join(release.appDir, 'resources/app.asar'), { isPack: false });
    expect(files).toEqual(
      expect.arrayContaining([
        '/package.json',
        '/out/main/index.js',
        '/out/preload/index.cjs',
        '/out/renderer/index.html',
      ]),
    );
    expect(
      files.filter((f) => /\.map$|\/(test|tests|__tests__)\/|\.(c|cc|h|gyp|ts)$|obj\.target|test_extension/.test(f)),
    ).toEqual([]);
    // Dev dependencies the renderer bundle was built from, and the daemon's workspace, stay out.
    for (const devOnly of ['react', 'electron', 'vite', 'playwright-core', '@xterm/xterm', '@firedeck/host-daemon']) {
      expect(
        files.some((f) => f.startsWith(`/node_modules/${devOnly}/`)),
        devOnly,
      ).toBe(false);
    }
    const checked = verify(release.appDir, 'release');
    // All that verify-package finds wrong is what the missing Electron rebuild left: modules built for Node.
    expect(checked.status).toBe(1);
    const problems = checked.output.split('\n').filter((l) => l.startsWith('  '));
    expect(problems.length).toBeGreaterThan(0);
    for (const p of problems) expect(p).toMatch(/\.node: built for module ABI \d+, but Electron [\d.]+ needs ABI \d+$/);
    expect(
      problems.some((p) => p.includes('better_sqlite3.node: built for module ABI ' + process.versions.modules)),
    ).toBe(true);
  });

  it('keeps everything the main process loads: the packaged dependencies load from the package alone', () => {
    const extracted = path.join(work, 'extracted');
    asar.extractAll(path.join(release.appDir, 'resources/app.asar'), extracted);
    // Modules built for Node (no Electron rebuild here) load in Node: proof that no runtime file was filtered out.
    const res = spawnSync(
      process.execPath,
      [
        '-e',
        "const r = require('node:module').createRequire(process.argv[1] + '/package.json'); const D = r('better-sqlite3'); new D(':memory:').prepare('select 1').get(); r('ssh2'); r('ws'); r('zod'); process.stdout.write('ok')",
        extracted,
      ],
      { encoding: 'utf8', env: { PATH: process.env.PATH, NODE_PATH: '' } },
    );
    expect(res.stderr).toBe('');
    expect(res.stdout).toBe('ok');
  });

  it('fails the build in afterPack, naming each native module built for Node instead of Electron', () => {
    const failed = build('abi', { fuses: 'release', afterPack: true });
    expect(failed.status).not.toBe(0);
    expect(failed.output).toContain('are not built for Electron');
    expect(failed.output).toMatch(
      /node_modules\/better-sqlite3\/build\/Release\/better_sqlite3\.node: built for module ABI \d+, but Electron [\d.]+ needs ABI \d+/,
    );
    expect(failed.output).toContain("unset npm's nodedir");
  });
});

describe('npm run package here', () => {
  it('stops at once, in one line, when Electron cannot be downloaded', () => {
    const t0 = Date.now();
    const res = spawnSync(process.execPath, [path.join(REPO_ROOT, 'build/scripts/package.mjs'), '--linux', '--x64'], {
      encoding: 'utf8',
      // An empty cache, and a mirror on a name that cannot resolve: this machine's situation, on any machine.
      env: { PATH: process.env.PATH, HOME: work, ELECTRON_MIRROR: 'https://electron-mirror.invalid/' },
    });
    expect(res.status).toBe(1);
    expect(Date.now() - t0).toBeLessThan(10_000);
    expect(res.stderr.trim().split('\n')).toHaveLength(1);
    expect(res.stderr).toMatch(
      /^npm run package: electron-builder needs electron-v[\d.]+-linux-x64\.zip, which cannot be downloaded from electron-mirror\.invalid here \(ENOTFOUND\); build the installers on a machine with internet access/,
    );
    // It failed before building anything.
    expect(res.stdout).toBe('');
  });
});
