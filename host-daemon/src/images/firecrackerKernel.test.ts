import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import { afterAll, describe, expect, it } from 'vitest';
import { checkFirecrackerKernel, gracefulStopOf, parseKernelConfig, readKernelConfig } from './firecrackerKernel';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'firedeck-fckernel-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

const ELF = Buffer.from([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1]);

/** An uncompressed kernel as CONFIG_IKCONFIG=y lays it out: code, then "IKCFG_ST", the gzipped config, "IKCFG_ED". */
function vmlinuxWith(name: string, gzippedConfig: Uint8Array | null, paddingBytes = 64 * 1024): string {
  const file = path.join(dir, name);
  const parts: Uint8Array[] = [ELF, Buffer.alloc(paddingBytes, 0x90)];
  if (gzippedConfig !== null) parts.push(Buffer.from('IKCFG_ST'), gzippedConfig, Buffer.from('IKCFG_ED'));
  parts.push(Buffer.alloc(4096, 0xcc));
  fs.writeFileSync(file, Buffer.concat(parts));
  return file;
}

const withKeyboard = 'CONFIG_SERIO=y\nCONFIG_SERIO_I8042=y\nCONFIG_KEYBOARD_ATKBD=y\nCONFIG_IKCONFIG=y\n';
// The shape of Firecracker's CI guest configs: the serial I/O bus off, so the two options never appear.
const withoutKeyboard = '# CONFIG_SERIO is not set\nCONFIG_VIRTIO_MMIO=y\n# CONFIG_IKCONFIG is not set\n';

describe('checkFirecrackerKernel', () => {
  it('accepts an uncompressed ELF image', () => {
    const elf = vmlinuxWith('plain', null, 64);
    expect(() => checkFirecrackerKernel(elf)).not.toThrow();
  });

  it('refuses a compressed kernel with a hint, and names a missing file', () => {
    const bz = path.join(dir, 'vmlinuz');
    fs.writeFileSync(bz, gzipSync(Buffer.alloc(1024)));
    expect(() => checkFirecrackerKernel(bz)).toThrow(/not an uncompressed vmlinux/);
    expect(() => checkFirecrackerKernel(path.join(dir, 'absent'))).toThrow(/cannot be read/);
  });
});

describe('graceful stop of a Firecracker kernel', () => {
  it('reads the config the kernel embeds, even when the marker straddles two reads', () => {
    // 4 MiB is the scan's chunk: put the marker across the boundary.
    const kernel = vmlinuxWith('embedded', gzipSync(withKeyboard), 4 * 1024 * 1024 - 3 - ELF.length);
    expect(readKernelConfig(kernel)).toMatchObject({ source: 'embedded', file: kernel });
    expect(gracefulStopOf(kernel)).toEqual({
      support: 'supported',
      reason: 'CONFIG_SERIO_I8042=y and CONFIG_KEYBOARD_ATKBD=y in its embedded config',
    });
  });

  it('says unsupported when the options are off, naming them and where it looked', () => {
    const kernel = vmlinuxWith('no-keyboard', gzipSync(withoutKeyboard));
    expect(gracefulStopOf(kernel)).toEqual({
      support: 'unsupported',
      reason:
        'CONFIG_SERIO_I8042 and CONFIG_KEYBOARD_ATKBD are not set in its embedded config: Ctrl-Alt-Del cannot reach the guest',
    });
    const half = vmlinuxWith('half', gzipSync('CONFIG_SERIO_I8042=y\n# CONFIG_KEYBOARD_ATKBD is not set\n'));
    expect(gracefulStopOf(half)).toMatchObject({ support: 'unsupported', reason: /^CONFIG_KEYBOARD_ATKBD is not set/ });
  });

  it('falls back to a config file beside the kernel, then says unknown', () => {
    const tree = path.join(dir, 'build-tree');
    fs.mkdirSync(tree);
    const kernel = path.join(tree, 'vmlinux');
    fs.copyFileSync(vmlinuxWith('bare', null), kernel);
    expect(gracefulStopOf(kernel)).toEqual({
      support: 'unknown',
      reason: `the kernel ${kernel} embeds no config (CONFIG_IKCONFIG) and has no vmlinux.config or .config beside it`,
    });
    // A kernel build tree keeps .config beside vmlinux.
    fs.writeFileSync(path.join(tree, '.config'), withoutKeyboard);
    expect(gracefulStopOf(kernel)).toMatchObject({
      support: 'unsupported',
      reason: new RegExp(`in ${tree}/\\.config:`),
    });
    // <vmlinux>.config wins over .config.
    fs.writeFileSync(`${kernel}.config`, withKeyboard);
    expect(gracefulStopOf(kernel)).toEqual({
      support: 'supported',
      reason: `CONFIG_SERIO_I8042=y and CONFIG_KEYBOARD_ATKBD=y in ${kernel}.config`,
    });
    fs.writeFileSync(`${kernel}.config`, 'CONFIG_SERIO_I8042=m\nCONFIG_KEYBOARD_ATKBD=y\n');
    expect(gracefulStopOf(kernel)).toMatchObject({ support: 'unknown', reason: /CONFIG_SERIO_I8042 is a module/ });
  });

  it("reads a real kernel's embedded config: this machine's own, a Firecracker guest kernel", () => {
    // /proc/config.gz is the very blob CONFIG_IKCONFIG embeds; wrapped as a vmlinux it must come out whole.
    // Machines whose kernel has no CONFIG_IKCONFIG_PROC check the synthetic kernels above only.
    if (!fs.existsSync('/proc/config.gz')) return;
    const blob = fs.readFileSync('/proc/config.gz');
    const text = gunzipSync(blob).toString('utf8');
    const kernel = vmlinuxWith('this-machine', blob);
    expect(readKernelConfig(kernel)?.config).toEqual(parseKernelConfig(text));
    const both = /^CONFIG_SERIO_I8042=y$/m.test(text) && /^CONFIG_KEYBOARD_ATKBD=y$/m.test(text);
    expect(gracefulStopOf(kernel).support).toBe(both ? 'supported' : 'unsupported');
  });
});
