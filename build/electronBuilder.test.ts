import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const require = createRequire(import.meta.url);
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const configFile = path.join(root, 'build/electron-builder.config.cjs');

interface Target {
  target: string;
  arch: string[];
}
type Fuses = Record<string, boolean>;
interface BuilderConfig {
  appId: string;
  productName: string;
  electronVersion: string;
  directories: { output: string; buildResources: string };
  files: string[];
  asarUnpack: string[];
  npmRebuild: boolean;
  afterPack: string;
  electronFuses: Fuses;
  mac: {
    target: Target[];
    hardenedRuntime: boolean;
    gatekeeperAssess: boolean;
    entitlements: string;
    entitlementsInherit: string;
    icon: string;
    identity?: unknown;
    notarize?: unknown;
  };
  linux: { target: Target[]; icon: string; executableName: string };
}

const config = require(configFile) as BuilderConfig;
const { PROFILES } = require('./electronFuses.cjs') as { PROFILES: Record<'release' | 'test', Fuses> };

/** The config as electron-builder would load it in a fresh process with this environment. */
function loadConfigWith(env: Record<string, string>): { fuses?: Fuses; error?: string } {
  const script = `try { process.stdout.write(JSON.stringify({ fuses: require(${JSON.stringify(configFile)}).electronFuses })) } catch (e) { process.stdout.write(JSON.stringify({ error: e.message })) }`;
  return JSON.parse(
    execFileSync(process.execPath, ['-e', script], { env: { PATH: process.env.PATH, ...env }, encoding: 'utf8' }),
  ) as { fuses?: Fuses; error?: string };
}

// electron-builder cannot package here (it downloads Electron): what can be checked without packaging is checked
// here, against electron-builder's own schema and the promises the product makes; test/integration/packaging-app
// runs electron-builder itself against a stand-in Electron.
describe('electron-builder configuration', () => {
  it("passes electron-builder's own schema validation", async () => {
    const { validateConfiguration } = require('app-builder-lib/out/util/config/config') as {
      validateConfiguration: (c: unknown, log: unknown) => Promise<void>;
    };
    const { DebugLogger } = require('builder-util') as {
      DebugLogger: new (enabled: boolean) => unknown;
    };
    await expect(validateConfiguration(config, new DebugLogger(false))).resolves.toBeUndefined();
    await expect(
      validateConfiguration({ ...config, linux: { ...config.linux, bogusOption: true } }, new DebugLogger(false)),
    ).rejects.toThrow();
    await expect(
      validateConfiguration(
        { ...config, electronFuses: { ...config.electronFuses, bogusFuse: true } },
        new DebugLogger(false),
      ),
    ).rejects.toThrow();
  });

  it('builds macOS dmg+zip and Linux AppImage+deb, each for x64 and arm64', () => {
    const matrix = (targets: Target[]): string[] =>
      targets.flatMap((t) => t.arch.map((a) => `${t.target}-${a}`)).sort();
    expect(matrix(config.mac.target)).toEqual(['dmg-arm64', 'dmg-x64', 'zip-arm64', 'zip-x64']);
    expect(matrix(config.linux.target)).toEqual(['AppImage-arm64', 'AppImage-x64', 'deb-arm64', 'deb-x64']);
  });

  it('names the app as the product does', () => {
    const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')) as { productName: string };
    expect(config.appId).toBe('dev.firedeck.console');
    expect(config.productName).toBe(pkg.productName);
    expect(config.linux.executableName).toBe('firedeck');
  });

  it('packages the Electron version the app is developed against', () => {
    expect(config.electronVersion).toBe((require('electron/package.json') as { version: string }).version);
  });

  it('signs macOS builds with the hardened runtime and only the JIT entitlement; identity and notarization come from the environment', () => {
    expect(config.mac.hardenedRuntime).toBe(true);
    expect(config.mac.gatekeeperAssess).toBe(false);
    for (const file of [config.mac.entitlements, config.mac.entitlementsInherit]) {
      const plist = fs.readFileSync(path.join(root, file), 'utf8');
      // Every key, granted or not: no get-task-allow, sandbox, library-validation or unsigned-memory exceptions.
      const keys = [...plist.matchAll(/<key>([^<]+)<\/key>\s*<(true|false)\/>/g)].map((m) => `${m[1]}=${m[2]}`);
      expect(keys, file).toEqual(['com.apple.security.cs.allow-jit=true']);
      expect([...plist.matchAll(/<key>/g)]).toHaveLength(1);
    }
    // electron-builder reads CSC_LINK/CSC_KEY_PASSWORD and APPLE_API_KEY/APPLE_ID… itself; nothing is pinned here.
    expect(config.mac.identity).toBeUndefined();
    expect(config.mac.notarize).toBeUndefined();
    expect(fs.readFileSync(configFile, 'utf8')).not.toMatch(/process\.env\.(CSC|APPLE)_/);
  });

  it('keeps the native modules outside the asar, checks their ABI after packing, and leaves the daemon out', () => {
    expect(config.asarUnpack).toEqual(expect.arrayContaining(['**/*.node']));
    expect(config.npmRebuild).toBe(true);
    expect(typeof require(path.join(root, config.afterPack))).toBe('function');
    expect(config.files.some((p) => /host-daemon|images|src\/|test/.test(p) && !p.startsWith('!'))).toBe(false);
    expect(config.files).toEqual(expect.arrayContaining(['out/**/*', '!**/*.map']));
  });
});

describe('Electron fuses', () => {
  it('release: no RunAsNode, NODE_OPTIONS or --inspect; cookies encrypted; only an integrity-checked app.asar', () => {
    expect(PROFILES.release).toEqual({
      runAsNode: false,
      enableCookieEncryption: true,
      enableNodeOptionsEnvironmentVariable: false,
      enableNodeCliInspectArguments: false,
      enableEmbeddedAsarIntegrityValidation: true,
      onlyLoadAppFromAsar: true,
      resetAdHocDarwinSignature: true,
    });
  });

  it('test: the release profile plus exactly what Playwright’s Electron launcher needs', () => {
    const diff = Object.keys(PROFILES.test).filter((k) => PROFILES.test[k] !== PROFILES.release[k]);
    expect(diff).toEqual(['enableNodeCliInspectArguments']);
    expect(PROFILES.test.enableNodeCliInspectArguments).toBe(true);
    // What the launcher in this repo's playwright-core does with an executablePath (as the packaged app is
    // started): --inspect (needs the fuse) and remote debugging (a Chromium switch); no -r loader, no
    // ELECTRON_RUN_AS_NODE, and NODE_OPTIONS removed — so RunAsNode and NODE_OPTIONS can stay off.
    const playwright = path.dirname(require.resolve('playwright-core/package.json'));
    const launcher = fs.readFileSync(path.join(playwright, 'lib/server/electron/electron.js'), 'utf8');
    expect(launcher).toContain(
      'let electronArguments = ["--inspect=0", "--remote-debugging-port=0", ...options.args || []];',
    );
    expect(launcher).toMatch(
      /if \(options\.executablePath\) \{\s*command = options\.executablePath;\s*\} else \{[^]*?electronArguments\.unshift\("-r"/,
    );
    expect(launcher).toContain('delete env.NODE_OPTIONS;');
    expect(launcher).not.toContain('ELECTRON_RUN_AS_NODE');
  });

  it('are chosen by FIREDECK_FUSES when electron-builder loads the config', () => {
    expect(loadConfigWith({}).fuses).toEqual(PROFILES.release);
    expect(loadConfigWith({ FIREDECK_FUSES: 'release' }).fuses).toEqual(PROFILES.release);
    expect(loadConfigWith({ FIREDECK_FUSES: 'test' }).fuses).toEqual(PROFILES.test);
    expect(loadConfigWith({ FIREDECK_FUSES: 'debug' }).error).toBe(
      'FIREDECK_FUSES must be one of release, test (got "debug")',
    );
  });
});

describe('icons in build/resources', () => {
  const resources = path.join(root, config.directories.buildResources);

  function pngSize(buf: Buffer): [number, number] {
    expect(buf.subarray(0, 8).toString('hex')).toBe('89504e470d0a1a0a');
    expect(buf.subarray(12, 16).toString('ascii')).toBe('IHDR');
    return [buf.readUInt32BE(16), buf.readUInt32BE(20)];
  }

  it('has a macOS .icns whose PNG entries have the sizes their types promise', () => {
    const icns = fs.readFileSync(path.join(root, config.mac.icon));
    expect(icns.subarray(0, 4).toString('ascii')).toBe('icns');
    expect(icns.readUInt32BE(4)).toBe(icns.length);
    const sizes: Record<string, number> = {
      icp4: 16,
      icp5: 32,
      ic11: 32,
      icp6: 64,
      ic12: 64,
      ic07: 128,
      ic08: 256,
      ic13: 256,
      ic09: 512,
      ic14: 512,
      ic10: 1024,
    };
    const seen: string[] = [];
    for (let at = 8; at < icns.length; ) {
      const type = icns.subarray(at, at + 4).toString('ascii');
      const length = icns.readUInt32BE(at + 4);
      expect(pngSize(icns.subarray(at + 8, at + length)), type).toEqual([sizes[type], sizes[type]]);
      seen.push(type);
      at += length;
    }
    expect(seen.sort()).toEqual(Object.keys(sizes).sort());
  });

  it('has Linux PNGs named by their size, up to 512 px', () => {
    const dir = path.join(root, config.linux.icon);
    const names = fs.readdirSync(dir).sort();
    expect(names).toEqual([
      '128x128.png',
      '16x16.png',
      '256x256.png',
      '32x32.png',
      '48x48.png',
      '512x512.png',
      '64x64.png',
    ]);
    for (const name of names) {
      const n = Number(name.split('x')[0]);
      expect(pngSize(fs.readFileSync(path.join(dir, name))), name).toEqual([n, n]);
    }
    expect(pngSize(fs.readFileSync(path.join(resources, 'icon.png')))).toEqual([1024, 1024]);
  });

  it('are what build/scripts/icons.mjs draws (regenerate them with it after a change)', () => {
    const out = fs.mkdtempSync(path.join(os.tmpdir(), 'firedeck-icons-'));
    try {
      execFileSync(process.execPath, [path.join(root, 'build/scripts/icons.mjs'), out]);
      for (const rel of ['icon.png', 'icon.icns', 'icons/16x16.png', 'icons/512x512.png']) {
        expect(fs.readFileSync(path.join(out, rel)).equals(fs.readFileSync(path.join(resources, rel))), rel).toBe(true);
      }
    } finally {
      fs.rmSync(out, { recursive: true, force: true });
    }
  });
});
