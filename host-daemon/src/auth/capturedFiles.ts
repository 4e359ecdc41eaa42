import { FiredeckError } from '../../../src/shared/errors';
import { providerFiles, type ProviderSpec } from '../../../src/shared/protocol/providers';
import type { Secret } from '../credentials/secret';

/** A captured file is at most this big (the CLIs' are a few KiB). */
export const MAX_CAPTURED_FILE_BYTES = 1024 * 1024;

export interface CapturedFile {
  /** Relative to the user's home, exactly as the provider table names it. */
  path: string;
  content: Secret;
  mode: number;
}

/**
 * Checks the files a browser VM's agent handed over against the provider's table, once, at the boundary where
 * they leave the guest: only the table's paths (the credential present, no file twice), sizes, JSON objects, and
 * the credential's required top-level fields by name. Errors name paths and fields, never a value. Returns the
 * files in the table's order (credential first), owner-only.
 */
export function checkCapturedFiles(spec: ProviderSpec, files: readonly CapturedFile[]): CapturedFile[] {
  const table = providerFiles(spec);
  const byPath = new Map<string, CapturedFile>();
  for (const f of files) {
    const known = table.find((t) => t.path === f.path);
    if (!known) {
      throw new FiredeckError('invalid_state', `The ${spec.name} capture holds a file the provider does not write`, {
        details: { path: f.path.slice(0, 256) },
      });
    }
    if (byPath.has(f.path)) throw new FiredeckError('invalid_state', `The ${spec.name} capture holds ${f.path} twice`);
    if (f.content.size === 0 || f.content.size > MAX_CAPTURED_FILE_BYTES) {
      throw new FiredeckError(
        'invalid_state',
        `The captured ${f.path} is ${f.content.size} bytes (1 B to 1 MiB allowed)`,
      );
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(f.content.text());
    } catch {
      throw new FiredeckError('invalid_state', `The captured ${f.path} is not JSON`);
    }
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
      throw new FiredeckError('invalid_state', `The captured ${f.path} is not a JSON object`);
    }
    const missing = known.requiredFields.filter((k) => !Object.prototype.hasOwnProperty.call(parsed, k));
    if (missing.length > 0) {
      throw new FiredeckError('invalid_state', `The captured ${f.path} lacks ${missing.join(', ')}`);
    }
    byPath.set(f.path, f);
  }
  const credential = byPath.get(spec.credential.path);
  if (!credential) throw new FiredeckError('invalid_state', `The ${spec.name} capture lacks ${spec.credential.path}`);
  return table.flatMap((t) => {
    const f = byPath.get(t.path);
    return f ? [{ path: f.path, content: f.content, mode: 0o600 }] : [];
  });
}

/** What a transfer writes: a provider's checked files, credential first. */
export interface CredentialPayload {
  provider: ProviderSpec['name'];
  files: CapturedFile[];
}

/** What a transfer wrote and how it was verified (hashes of what is now in the CLI VM, never contents). */
export interface TransferResult {
  mode: 'online' | 'offline';
  files: { path: string; sha256: string }[];
  verifiedBy: 'status-check' | 'hash';
}
