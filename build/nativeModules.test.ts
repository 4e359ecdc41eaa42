import fs from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const require = createRequire(import.meta.url);
interface NativeModule {
  file: string;
  abi: number | null;
  napi: boolean;
  archs: string[];
}
const { readNativeModule, findNativeModules, nativeModuleProblems } = require('./nativeModules.cjs') as {
  readNativeModule: (file: string) => NativeModule;
  findNativeModules: (dir: string) => string[];
  nativeModuleProblems: (dir: string, expected: { abi: number; arch: string; runtime: string }) => string[];
};
const { electronAbi } = require('./afterPack.cjs') as { electronAbi: (version: string) => number };

const sqlite = require.resolve('better-sqlite3/build/Release/better_sqlite3.node');
let dir: string;

/** A file with just the headers and symbol text the reader looks at. */
function fakeModule(name: string, header: Buffer, symbols: string): string {
  const file = path.join(dir, name);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, Buffer.concat([header, Buffer.alloc(64), Buffer.from(symbols, 'latin1')]));
  return file;
}
function elf(machine: number): Buffer {
  const h = Buffer.alloc(20);
  h.writeUInt32BE(0x7f454c46, 0);
  h[4] = 2;
  h[5] = 1;
  h.writeUInt16LE(machine, 18);
  return h;
}

beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'firedeck-native-'));
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

describe('native module reader', () => {
  it("reads the ABI and CPU of better-sqlite3 as npm built it: this Node's", () => {
    expect(readNativeModule(sqlite)).toMatchObject({
      abi: Number(process.versions.modules),
      napi: false,
      archs: [process.arch],
    });
  });

  it('reads ELF arm64, Mach-O and universal Mach-O headers and N-API modules', () => {
    expect(readNativeModule(fakeModule('a.node', elf(0xb7), '\0node_register_module_v150\0')).archs).toEqual(['arm64']);
    const macho = Buffer.alloc(8);
    macho.writeUInt32LE(0xfeedfacf, 0);
    macho.writeUInt32LE(0x0100000c, 4);
    expect(readNativeModule(fakeModule('m.node', macho, '_node_register_module_v150'))).toMatchObject({
      abi: 150,
      archs: ['arm64'],
    });
    const fat = Buffer.alloc(48);
    fat.writeUInt32BE(0xcafebabe, 0);
    fat.writeUInt32BE(2, 4);
    fat.writeUInt32BE(0x01000007, 8);
    fat.writeUInt32BE(0x0100000c, 28);
    expect(readNativeModule(fakeModule('u.node', fat, '_napi_register_module_v1'))).toMatchObject({
      abi: null,
      napi: true,
      archs: ['x64', 'arm64'],
    });
  });

  it("names each module built for Node's ABI or another CPU when Electron's is expected", () => {
    const tree = path.join(dir, 'tree');
    fs.mkdirSync(path.join(tree, 'node_modules/better-sqlite3/build/Release/obj.target'), { recursive: true });
    fs.copyFileSync(sqlite, path.join(tree, 'node_modules/better-sqlite3/build/Release/better_sqlite3.node'));
    // Intermediates are not what gets loaded, and not checked.
    fs.copyFileSync(
      sqlite,
      path.join(tree, 'node_modules/better-sqlite3/build/Release/obj.target/better_sqlite3.node'),
    );
    fs.copyFileSync(
      fakeModule('arm.node', elf(0xb7), 'napi_register_module_v1'),
      path.join(tree, 'node_modules/arm.node'),
    );
    expect(findNativeModules(tree).map((f) => path.relative(tree, f))).toEqual([
      'node_modules/arm.node',
      'node_modules/better-sqlite3/build/Release/better_sqlite3.node',
    ]);
    const abi = electronAbi((require('electron/package.json') as { version: string }).version);
    expect(abi).toBeGreaterThan(Number(process.versions.modules));
    expect(nativeModuleProblems(tree, { abi, arch: process.arch, runtime: 'Electron' })).toEqual([
      `node_modules/arm.node: built for arm64, but the target is ${process.arch}`,
      `node_modules/better-sqlite3/build/Release/better_sqlite3.node: built for module ABI ${process.versions.modules}, but Electron needs ABI ${abi}`,
    ]);
    expect(
      nativeModuleProblems(path.join(tree, 'node_modules/better-sqlite3'), {
        abi: Number(process.versions.modules),
        arch: process.arch,
        runtime: 'Node',
      }),
    ).toEqual([]);
  });

  it("knows Electron's ABI from its npm package, the same as node-abi's table", () => {
    const version = (require('electron/package.json') as { version: string }).version;
    const nodeAbi = require('node-abi') as { getAbi: (v: string, runtime: string) => string };
    expect(electronAbi(version)).toBe(Number(nodeAbi.getAbi(version, 'electron')));
  });
});
