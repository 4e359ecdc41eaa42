import fs from 'node:fs';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { FiredeckError } from '../../../../src/shared/errors';

const run = promisify(execFile);

/** A release as `firecracker --version` / `jailer --version` print it (`Firecracker v1.16.1`). */
export interface Release {
  major: number;
  minor: number;
  patch: number;
  /** The whole first line, e.g. `Firecracker v1.16.1`. */
  text: string;
}

type Triple = readonly [number, number, number];

/**
 * The oldest Firecracker the driver runs. `PUT /serial` (serial_out_path) came in 1.14.0 (CHANGELOG #5350);
 * 1.14.0 and 1.14.1 open that path write-only and non-blocking (src/vmm/src/utils/mod.rs
 * open_file_write_nonblock), so a FIFO without a reader fails InstanceStart with ENXIO and loses output when
 * the daemon is away; from 1.14.2 (and 1.15.0) Firecracker opens it read-write and keeps a reader itself.
 */
export const MINIMUM_FIRECRACKER: Triple = [1, 14, 2];
/** `rate_limiter` on `PUT /serial` came in 1.16.0 (CHANGELOG #5824); older releases refuse the field. */
export const SERIAL_RATE_LIMITER_SINCE: Triple = [1, 16, 0];

export function parseRelease(output: string, program: 'Firecracker' | 'Jailer'): Release | null {
  const line =
    output
      .split('\n')
      .find((l) => l.trim() !== '')
      ?.trim() ?? '';
  const m = new RegExp(`^${program} v(\\d+)\\.(\\d+)\\.(\\d+)\\S*$`).exec(line);
  if (m === null) return null;
  return { major: Number(m[1]), minor: Number(m[2]), patch: Number(m[3]), text: line };
}

export function atLeast(release: Release, [major, minor, patch]: Triple): boolean {
  if (release.major !== major) return release.major > major;
  if (release.minor !== minor) return release.minor > minor;
  return release.patch >= patch;
}

export function sameRelease(a: Release, b: Release): boolean {
  return a.major === b.major && a.minor === b.minor && a.patch === b.patch;
}

export function versionText([major, minor, patch]: Triple): string {
  return `${major}.${minor}.${patch}`;
}

const cache = new Map<string, { key: string; release: Release | null; output: string }>();

/**
 * Runs `<binary> --version` once per binary file (cached until the file changes); null when it prints no
 * release of that program.
 */
export async function probeRelease(
  binary: string,
  program: 'Firecracker' | 'Jailer',
): Promise<{ release: Release | null; output: string }> {
  let key = '';
  try {
    const st = fs.statSync(binary);
    key = `${st.dev}:${st.ino}:${st.size}:${st.mtimeMs}`;
  } catch {
    // not there: let the run below say so
  }
  const hit = cache.get(`${program}:${binary}`);
  if (hit !== undefined && hit.key === key && key !== '') return hit;
  let output: string;
  try {
    output = (await run(binary, ['--version'], { timeout: 10_000 })).stdout;
  } catch (err) {
    const e = err as { stderr?: string; code?: string | number };
    output = `${e.stderr?.trim() || String(e.code ?? err)}`;
    return { release: null, output };
  }
  const result = { key, release: parseRelease(output, program), output: output.trim() };
  cache.set(`${program}:${binary}`, result);
  return result;
}

/** The release of a Firecracker binary the driver can use, or a typed error that says the fix. */
export async function requireFirecracker(binary: string): Promise<Release> {
  const { release, output } = await probeRelease(binary, 'Firecracker');
  if (release === null) {
    throw new FiredeckError(
      'unavailable',
      `${binary} --version printed no Firecracker release (${output.slice(0, 200)})`,
      {
        hint: 'point FIREDECK_FIRECRACKER_BINARY at a Firecracker release binary',
        details: { binary },
      },
    );
  }
  if (!atLeast(release, MINIMUM_FIRECRACKER)) {
    throw new FiredeckError(
      'unavailable',
      `${release.text} is too old: firedeckd needs Firecracker ${versionText(MINIMUM_FIRECRACKER)} or newer (serial output through PUT /serial, opened read-write)`,
      {
        hint: `install a current Firecracker release (both firecracker and jailer, ${versionText(SERIAL_RATE_LIMITER_SINCE)} or newer also rate-limits the serial console)`,
        details: { binary, version: release.text },
      },
    );
  }
  return release;
}

/** The jailer of the same release as Firecracker (docs/jailer.md: each jailer with the Firecracker of its version). */
export async function requireJailer(binary: string, firecracker: Release): Promise<Release> {
  const { release, output } = await probeRelease(binary, 'Jailer');
  if (release === null) {
    throw new FiredeckError('unavailable', `${binary} --version printed no Jailer release (${output.slice(0, 200)})`, {
      hint: 'point FIREDECK_FIRECRACKER_JAILER_BINARY at the jailer of the Firecracker release',
      details: { binary },
    });
  }
  if (!sameRelease(release, firecracker)) {
    throw new FiredeckError('unavailable', `${release.text} does not match ${firecracker.text}`, {
      hint: 'install firecracker and jailer from the same release',
      details: { binary, version: release.text, firecracker: firecracker.text },
    });
  }
  return release;
}
