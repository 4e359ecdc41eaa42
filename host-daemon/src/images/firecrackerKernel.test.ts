import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, describe, expect, it } from 'vitest';
import { checkFirecrackerKernel } from './builder';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'firedeck-fckernel-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

describe('checkFirecrackerKernel', () => {
  it('accepts an uncompressed ELF image', () => {
    const elf = path.join(dir, 'vmlinux');
    fs.writeFileSync(elf, Buffer.concat([Buffer.from([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1]), Buffer.alloc(64)]));
    expect(() => checkFirecrackerKernel(elf)).not.toThrow();
  });

  it('refuses a compressed kernel with a hint, and names a missing file', () => {
    const bz = path.join(dir, 'vmlinuz');
    fs.writeFileSync(bz, gzipSync(Buffer.alloc(1024)));
    expect(() => checkFirecrackerKernel(bz)).toThrow(/not an uncompressed vmlinux/);
    expect(() => checkFirecrackerKernel(path.join(dir, 'absent'))).toThrow(/cannot be read/);
  });
});
