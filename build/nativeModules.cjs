// What a native Node module (.node) was built for, read from the file itself: the module ABI it registers with
// (node_register_module_v<ABI>, or N-API, which any runtime loads; null when neither name is there) and its CPU
// architecture (ELF or Mach-O).
// Used by the app's packaging (Electron's ABI, every target arch) and the daemon's (the host Node's ABI), because
// a module built against the wrong headers installs and "rebuilds" without complaint and fails only when loaded.
'use strict';
const fs = require('node:fs');
const path = require('node:path');

const ELF_MACHINES = { 0x03: 'ia32', 0x28: 'armv7l', 0x3e: 'x64', 0xb7: 'arm64' };
const MACHO_CPUS = { 0x01000007: 'x64', 0x0100000c: 'arm64' };

/**
 * @param {string} file
 * @returns {{ file: string, abi: number | null, napi: boolean, archs: string[] }}
 */
function readNativeModule(file) {
  const bytes = fs.readFileSync(file);
  const text = bytes.toString('latin1');
  const registered = /node_register_module_v(\d+)/.exec(text);
  return {
    file,
    abi: registered ? Number(registered[1]) : null,
    napi: /napi_register_module_v\d/.test(text),
    archs: architectures(bytes),
  };
}

/** @param {Buffer} b */
function architectures(b) {
  if (b.length >= 20 && b.readUInt32BE(0) === 0x7f454c46) {
    const machine = b[5] === 2 ? b.readUInt16BE(18) : b.readUInt16LE(18);
    return [ELF_MACHINES[machine] ?? `elf-machine-${machine}`];
  }
  if (b.length >= 8 && b.readUInt32LE(0) === 0xfeedfacf) {
    const cpu = b.readUInt32LE(4);
    return [MACHO_CPUS[cpu] ?? `macho-cpu-${cpu}`];
  }
  if (b.length >= 8 && b.readUInt32BE(0) === 0xcafebabe) {
    const count = b.readUInt32BE(4);
    const archs = [];
    for (let i = 0; i < count && 8 + 20 * i + 4 <= b.length; i++) {
      const cpu = b.readUInt32BE(8 + 20 * i);
      archs.push(MACHO_CPUS[cpu] ?? `macho-cpu-${cpu}`);
    }
    return archs;
  }
  return [];
}

/** Every `.node` file under dir (build intermediates under obj.target are skipped: they are not loaded). */
function findNativeModules(dir) {
  const found = [];
  const walk = (d) => {
    let entries;
    try {
      entries = fs.readdirSync(d, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      const p = path.join(d, e.name);
      if (e.isDirectory() && e.name !== 'obj.target') walk(p);
      else if (e.isFile() && e.name.endsWith('.node')) found.push(p);
    }
  };
  walk(dir);
  return found.sort();
}

/**
 * Problems with the native modules under dir for a runtime of ABI `abi` on CPU `arch`; empty when all is well.
 * @param {string} dir
 * @param {{ abi: number, arch: string, runtime: string }} expected
 * @returns {string[]}
 */
function nativeModuleProblems(dir, expected) {
  const problems = [];
  for (const file of findNativeModules(dir)) {
    const m = readNativeModule(file);
    const where = path.relative(dir, file);
    // Modules registered the legacy way (NODE_MODULE, e.g. cpu-features) keep their ABI in a data structure, not
    // a symbol name: they are checked by loading them (build/afterPack.cjs), not here.
    if (!m.napi && m.abi !== null && m.abi !== expected.abi) {
      problems.push(`${where}: built for module ABI ${m.abi}, but ${expected.runtime} needs ABI ${expected.abi}`);
    }
    if (!m.archs.includes(expected.arch)) {
      problems.push(`${where}: built for ${m.archs.join('+') || 'an unknown CPU'}, but the target is ${expected.arch}`);
    }
  }
  return problems;
}

module.exports = { readNativeModule, findNativeModules, nativeModuleProblems };
