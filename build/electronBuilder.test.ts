import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const require = createRequire(import.meta.url);
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

interface Target {
  target: string;
  arch: string[];
}
interface BuilderConfig {
  electronVersion: string;
  files: string[];
  asarUnpack: string[];
  mac: { target: Target[] };
  linux: { target: Target[] };
}

// electron-builder cannot package here (it downloads Electron), so check the config as far as it can be:
// against electron-builder's own schema, and for the promises the product makes.
describe('electron-builder configuration', () => {
  const config = require(path.join(root, 'build/electron-builder.config.cjs')) as BuilderConfig;

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
  });

  it('builds macOS dmg+zip and Linux AppImage+deb', () => {
    expect(config.mac.target.map((t) => t.target).sort()).toEqual(['dmg', 'zip']);
    expect(config.linux.target.map((t) => t.target).sort()).toEqual(['AppImage', 'deb']);
  });

  it('packages the Electron version the app is developed against', () => {
    expect(config.electronVersion).toBe((require('electron/package.json') as { version: string }).version);
  });

  it('keeps the native SQLite module outside the asar and the daemon out of the app', () => {
    expect(config.asarUnpack.some((p) => p.includes('better-sqlite3'))).toBe(true);
    expect(config.files.some((p) => p.includes('host-daemon'))).toBe(false);
  });
});
