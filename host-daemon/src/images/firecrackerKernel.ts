import fs from 'node:fs';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import { FiredeckError } from '../../../src/shared/errors';
import type { GracefulStop } from '../../../src/shared/protocol/daemon';

/** The kernel's build options: `CONFIG_FOO` → `y`, `m`, a value, or `n` for `# CONFIG_FOO is not set`. */
export type KernelConfig = Map<string, string>;

/** Where a kernel's config was read from. */
export type KernelConfigSource = 'embedded' | 'file';

/**
 * Options Firecracker's `SendCtrlAltDel` needs in the guest kernel (docs/api_requests/actions.md: "the guest
 * kernel needs CONFIG_SERIO_I8042 and CONFIG_KEYBOARD_ATKBD"). Firecracker's own CI guest configs switch the
 * serial I/O bus off, and answers 204 to the action all the same.
 */
const CTRL_ALT_DEL_OPTIONS = ['CONFIG_SERIO_I8042', 'CONFIG_KEYBOARD_ATKBD'] as const;

const ELF_MAGIC = Buffer.from([0x7f, 0x45, 0x4c, 0x46]);
/** kernel/configs.c (CONFIG_IKCONFIG): "IKCFG_ST", the gzipped .config, "IKCFG_ED" (scripts/extract-ikconfig). */
const IKCONFIG_START = Buffer.concat([Buffer.from('IKCFG_ST'), Buffer.from([0x1f, 0x8b, 0x08])]);
const IKCONFIG_END = Buffer.from('IKCFG_ED');
/** The gzipped config is some tens of KiB; this bounds what a malformed file can make us read. */
const IKCONFIG_MAX_BYTES = 4 * 1024 * 1024;

/** The uncompressed kernel image builds record for Firecracker: FIREDECK_FIRECRACKER_KERNEL, if set. */
export function defaultFirecrackerKernel(env: NodeJS.ProcessEnv = process.env): string | null {
  return env.FIREDECK_FIRECRACKER_KERNEL || null;
}

/** Refuses anything but an uncompressed ELF kernel, the only kind Firecracker boots. */
export function checkFirecrackerKernel(file: string): void {
  const head = Buffer.alloc(4);
  let fd: number;
  try {
    fd = fs.openSync(file, 'r');
  } catch (err) {
    throw new FiredeckError('not_found', `Firecracker kernel ${file} cannot be read: ${(err as Error).message}`, {
      hint: 'set FIREDECK_FIRECRACKER_KERNEL to the path of an uncompressed vmlinux',
    });
  }
  try {
    fs.readSync(fd, head, 0, 4, 0);
  } finally {
    fs.closeSync(fd);
  }
  if (!head.equals(ELF_MAGIC)) {
    throw new FiredeckError('invalid_params', `Firecracker kernel ${file} is not an uncompressed vmlinux (ELF)`, {
      hint: 'Firecracker boots an uncompressed vmlinux with virtio-mmio built in, not a bzImage/vmlinuz (a distribution kernel)',
    });
  }
}

/**
 * The config of an uncompressed kernel: embedded in it (CONFIG_IKCONFIG=y), else from `<vmlinux>.config` or
 * `.config` beside it (a kernel build tree), else null.
 */
export function readKernelConfig(
  vmlinux: string,
): { config: KernelConfig; source: KernelConfigSource; file: string } | null {
  const embedded = embeddedConfig(vmlinux);
  if (embedded !== null) return { config: parseKernelConfig(embedded), source: 'embedded', file: vmlinux };
  for (const candidate of [`${vmlinux}.config`, path.join(path.dirname(vmlinux), '.config')]) {
    let text: string;
    try {
      text = fs.readFileSync(candidate, 'utf8');
    } catch {
      continue;
    }
    return { config: parseKernelConfig(text), source: 'file', file: candidate };
  }
  return null;
}

export function parseKernelConfig(text: string): KernelConfig {
  const config: KernelConfig = new Map();
  for (const line of text.split('\n')) {
    const set = /^(CONFIG_[A-Za-z0-9_]+)=(.*)$/.exec(line);
    if (set !== null) {
      config.set(set[1]!, set[2]!);
      continue;
    }
    const unset = /^# (CONFIG_[A-Za-z0-9_]+) is not set$/.exec(line);
    if (unset !== null) config.set(unset[1]!, 'n');
  }
  return config;
}

/** Whether `SendCtrlAltDel` can reach a guest running this kernel. */
export function gracefulStopOf(vmlinux: string): GracefulStop {
  let found: ReturnType<typeof readKernelConfig>;
  try {
    found = readKernelConfig(vmlinux);
  } catch (err) {
    return { support: 'unknown', reason: `the kernel ${vmlinux} cannot be read: ${(err as Error).message}` };
  }
  if (found === null) {
    return {
      support: 'unknown',
      reason: `the kernel ${vmlinux} embeds no config (CONFIG_IKCONFIG) and has no ${path.basename(vmlinux)}.config or .config beside it`,
    };
  }
  const where = found.source === 'embedded' ? 'its embedded config' : found.file;
  const values = CTRL_ALT_DEL_OPTIONS.map((option) => [option, found.config.get(option) ?? 'n'] as const);
  const missing = values.filter(([, v]) => v !== 'y' && v !== 'm').map(([option]) => option);
  if (missing.length > 0) {
    return {
      support: 'unsupported',
      reason: `${missing.join(' and ')} ${missing.length > 1 ? 'are' : 'is'} not set in ${where}: Ctrl-Alt-Del cannot reach the guest`,
    };
  }
  const modules = values.filter(([, v]) => v === 'm').map(([option]) => option);
  if (modules.length > 0) {
    return {
      support: 'unknown',
      reason: `${modules.join(' and ')} ${modules.length > 1 ? 'are modules' : 'is a module'} in ${where}: only a guest that loads ${modules.length > 1 ? 'them' : 'it'} receives Ctrl-Alt-Del`,
    };
  }
  return { support: 'supported', reason: `${CTRL_ALT_DEL_OPTIONS.map((o) => `${o}=y`).join(' and ')} in ${where}` };
}

const cache = new Map<string, { key: string; result: GracefulStop }>();

/** gracefulStopOf, remembered per file until it changes (images are immutable; the answer is read often). */
export function cachedGracefulStopOf(vmlinux: string): GracefulStop {
  let key: string;
  try {
    const st = fs.statSync(vmlinux);
    key = `${st.dev}:${st.ino}:${st.size}:${st.mtimeMs}`;
  } catch (err) {
    return { support: 'unknown', reason: `the kernel ${vmlinux} cannot be read: ${(err as Error).message}` };
  }
  const hit = cache.get(vmlinux);
  if (hit?.key === key) return hit.result;
  const result = gracefulStopOf(vmlinux);
  cache.set(vmlinux, { key, result });
  return result;
}

/** The gzipped config between kernel/configs.c's markers, scanned for without reading the whole image. */
function embeddedConfig(vmlinux: string): string | null {
  const fd = fs.openSync(vmlinux, 'r');
  try {
    const chunkSize = 4 * 1024 * 1024;
    const overlap = IKCONFIG_START.length - 1;
    const chunk = Buffer.alloc(chunkSize + overlap);
    let carried = 0;
    let position = 0;
    for (;;) {
      const n = fs.readSync(fd, chunk, carried, chunkSize, position);
      if (n <= 0) return null;
      const window = chunk.subarray(0, carried + n);
      const at = window.indexOf(IKCONFIG_START);
      if (at !== -1) return configAt(fd, position - carried + at + IKCONFIG_END.length);
      position += n;
      carried = Math.min(overlap, window.length);
      window.copy(chunk, 0, window.length - carried);
    }
  } finally {
    fs.closeSync(fd);
  }
}

function configAt(fd: number, gzipStart: number): string | null {
  const data = Buffer.alloc(IKCONFIG_MAX_BYTES);
  const n = fs.readSync(fd, data, 0, data.length, gzipStart);
  const region = data.subarray(0, n);
  // The end marker's bytes could occur inside the gzip stream by chance: try each until one unpacks.
  for (let end = region.indexOf(IKCONFIG_END); end !== -1; end = region.indexOf(IKCONFIG_END, end + 1)) {
    try {
      return gunzipSync(region.subarray(0, end)).toString('utf8');
    } catch {
      // not the end yet
    }
  }
  return null;
}
