import path from 'node:path';
import { FiredeckError } from '../../../src/shared/errors';
import {
  PROVIDERS,
  ProviderName,
  type CompanionFile,
  type ProviderFile,
  type ProviderSpec,
} from '../../../src/shared/protocol/providers';
import { Secret } from './secret';

/** The CLI user of both guest images (`cli` and `test`): its home and ids. */
export const GUEST_HOME = '/home/firedeck';
export const GUEST_UID = 1000;
export const GUEST_GID = 1000;

/** A captured credential file arrives at most this large; a merged companion may grow up to MAX_MERGED_BYTES. */
export const MAX_CAPTURED_BYTES = 1024 * 1024;
export const MAX_MERGED_BYTES = 4 * 1024 * 1024;
/**
 * A credential or companion file nests at most this deep (the CLIs' files nest a few levels). A 1 MiB file could
 * nest half a million deep, which JSON.parse takes but JSON.stringify and any recursive walk do not.
 */
export const MAX_JSON_DEPTH = 100;

/** A file as the oauth agent captured it in the browser VM. */
export interface CapturedFile {
  /** Relative to the user's home, exactly as the provider table names it (e.g. `.codex/auth.json`). */
  path: string;
  content: Secret;
  /** The mode it had where it was captured; the CLI VM's copy is always written 0600. */
  mode: number;
}

/** One login's files: the provider's credential first, then any of its companions. */
export interface CredentialPayload {
  provider: ProviderName;
  files: CapturedFile[];
}

/** A payload file checked against the provider table: where it goes in the guest and how. */
export interface PlannedGuestFile {
  /** Relative to the home, from the table (never from the payload's string). */
  relative: string;
  /** Absolute in the guest: `/home/firedeck/<relative>`. */
  guestPath: string;
  content: Secret;
  /** Null for the credential (replaced whole); 'json' for a companion merged into the guest's copy. */
  merge: CompanionFile['merge'] | null;
}

export interface ValidatedPayload {
  spec: ProviderSpec;
  files: PlannedGuestFile[];
}

/** A relative home path of the table: plain components, no `.`/`..`, nothing a shell or debugfs would read. */
const TABLE_PATH = /^[A-Za-z0-9._@+-]+(?:\/[A-Za-z0-9._@+-]+)*$/;

/**
 * Checks a captured payload once, at the boundary where it enters the transfer: a known provider, the credential
 * first, every other file one of that provider's companions (each at most once), each content a Secret of at most
 * 1 MiB, every file a JSON object, the credential with the table's required fields. Errors name providers, paths
 * and field names only, never a value (a JSON parser's message quotes the input, so it is never passed on).
 */
export function validatePayload(payload: CredentialPayload): ValidatedPayload {
  if (typeof payload !== 'object' || payload === null) {
    throw new FiredeckError('invalid_params', 'A credential payload must be an object');
  }
  const name = ProviderName.safeParse(payload.provider);
  if (!name.success) {
    throw new FiredeckError('invalid_params', 'The credential payload names no known provider', {
      hint: `Providers: ${ProviderName.options.join(', ')}.`,
    });
  }
  const spec = PROVIDERS[name.data];
  const table: (ProviderFile & { merge: CompanionFile['merge'] | null })[] = [
    { ...spec.credential, merge: null },
    ...spec.companions,
  ];
  if (!Array.isArray(payload.files) || payload.files.length === 0 || payload.files.length > table.length) {
    throw new FiredeckError(
      'invalid_params',
      `A ${spec.name} payload holds its credential and at most ${spec.companions.length} companion file(s)`,
    );
  }
  const seen = new Set<string>();
  const files = payload.files.map((file, index): PlannedGuestFile => {
    const given: unknown = (file as Partial<CapturedFile> | null)?.path;
    const entry = table.find((t) => t.path === given);
    if (entry === undefined) {
      throw new FiredeckError(
        'invalid_params',
        `File ${index + 1} of the ${spec.name} payload is not one of its files`,
        {
          hint: `A ${spec.name} payload may hold only ${table.map((t) => `~/${t.path}`).join(', ')}.`,
        },
      );
    }
    if (index === 0 && entry.merge !== null) {
      throw new FiredeckError('invalid_params', `The ${spec.name} payload must start with its credential`, {
        hint: `The credential is ~/${spec.credential.path}; companions follow it.`,
      });
    }
    if (index > 0 && entry.merge === null) {
      throw new FiredeckError('invalid_params', `The ${spec.name} payload holds its credential twice`);
    }
    if (seen.has(entry.path)) {
      throw new FiredeckError('invalid_params', `~/${entry.path} is given twice in the ${spec.name} payload`);
    }
    seen.add(entry.path);
    const relative = tablePath(entry.path);
    if (!(file.content instanceof Secret)) {
      throw new FiredeckError('invalid_params', `The content of ~/${relative} must be a Secret`);
    }
    if (!Number.isInteger(file.mode) || file.mode < 0 || file.mode > 0o7777) {
      throw new FiredeckError('invalid_params', `The captured mode of ~/${relative} is not a permission mode`);
    }
    if (file.content.size > MAX_CAPTURED_BYTES) {
      throw new FiredeckError('invalid_params', `The captured ~/${relative} is larger than 1 MiB`);
    }
    const parsed = parseObject(file.content);
    if (parsed === null) {
      throw new FiredeckError('invalid_params', `The captured ~/${relative} is not a JSON object`, {
        hint: 'The login did not finish writing it, or the CLI changed its format: start a new login.',
      });
    }
    if (tooDeep(parsed)) {
      throw new FiredeckError(
        'invalid_params',
        `The captured ~/${relative} nests deeper than ${MAX_JSON_DEPTH} levels`,
        {
          hint: 'A CLI credential is shallow JSON: start a new login.',
        },
      );
    }
    const missing = entry.requiredFields.filter((f) => !Object.prototype.hasOwnProperty.call(parsed, f));
    if (missing.length > 0) {
      throw new FiredeckError('invalid_params', `The captured ~/${relative} lacks the field(s) ${missing.join(', ')}`, {
        hint: `A complete ${spec.label} credential has ${entry.requiredFields.join(', ')}; start a new login.`,
        details: { missing },
      });
    }
    return { relative, guestPath: `${GUEST_HOME}/${relative}`, content: file.content, merge: entry.merge };
  });
  return { spec, files };
}

/**
 * Merges a captured companion (a JSON object) into the guest's current copy: the captured top-level keys win, the
 * other keys of the current file stay. No current file → the captured bytes as they are. A current file that is
 * not a JSON object is refused (typed, naming only the path), so nothing is written over what the user has.
 */
export function mergeJsonCompanion(current: Secret | null, captured: Secret, guestPath: string): Secret {
  if (current === null) return captured;
  if (current.size > MAX_MERGED_BYTES) {
    throw new FiredeckError('resource_exhausted', `${guestPath} in the VM is larger than 4 MiB; it was not merged`);
  }
  const existing = parseObject(current);
  if (existing === null) {
    throw new FiredeckError('invalid_state', `${guestPath} in the VM is not a JSON object; nothing was written`, {
      hint: `Fix or remove ${guestPath} inside the VM (the CLI rewrites it), then transfer the credential again.`,
    });
  }
  if (tooDeep(existing)) {
    throw new FiredeckError(
      'invalid_state',
      `${guestPath} in the VM nests deeper than ${MAX_JSON_DEPTH} levels; nothing was written`,
      { hint: `Fix or remove ${guestPath} inside the VM (the CLI rewrites it), then transfer the credential again.` },
    );
  }
  const incoming = parseObject(captured);
  if (incoming === null) {
    throw new FiredeckError('invalid_params', `The captured companion for ${guestPath} is not a JSON object`);
  }
  if (tooDeep(incoming)) {
    throw new FiredeckError(
      'invalid_params',
      `The captured companion for ${guestPath} nests deeper than ${MAX_JSON_DEPTH} levels`,
    );
  }
  const merged = Secret.from(`${JSON.stringify({ ...existing, ...incoming }, null, 2)}\n`);
  if (merged.size > MAX_MERGED_BYTES) {
    merged.wipe();
    throw new FiredeckError('resource_exhausted', `Merged, ${guestPath} would be larger than 4 MiB`);
  }
  return merged;
}

/**
 * Removes every string value of the given JSON files (and each file's whole text) from a program's output, and
 * caps it: what a status check prints may echo a token, and the output goes into an error.
 */
export function scrubOutput(output: string, secrets: readonly Secret[], maxChars = 4000): string {
  const needles = new Set<string>();
  for (const s of secrets) {
    const text = s.text();
    if (text.trim().length >= 4) needles.add(text.trim());
    collectStrings(parseJson(s), needles);
  }
  let out = output;
  for (const n of [...needles].sort((a, b) => b.length - a.length)) out = out.split(n).join('[redacted]');
  return out.length > maxChars ? `${out.slice(0, maxChars)}… [${out.length - maxChars} more characters]` : out;
}

/** Every string value, however deep (a walk with its own stack: a guest's JSON may nest past the call stack). */
function collectStrings(root: unknown, into: Set<string>): void {
  const stack: unknown[] = [root];
  while (stack.length > 0) {
    const value = stack.pop();
    if (typeof value === 'string') {
      // Short strings (true/false-like flags, "file") would blank ordinary words of the output without protecting much.
      if (value.length >= 6) into.add(value);
    } else if (typeof value === 'object' && value !== null) {
      // One push per value: spreading a large array into push() overflows the call stack too.
      for (const v of Object.values(value)) stack.push(v);
    }
  }
}

/** Whether a parsed JSON value nests deeper than MAX_JSON_DEPTH (walked with its own stack). */
function tooDeep(root: unknown): boolean {
  const stack: [unknown, number][] = [[root, 1]];
  while (stack.length > 0) {
    const [value, depth] = stack.pop()!;
    if (typeof value !== 'object' || value === null) continue;
    if (depth > MAX_JSON_DEPTH) return true;
    for (const v of Object.values(value)) stack.push([v, depth + 1]);
  }
  return false;
}

function parseJson(s: Secret): unknown {
  try {
    return JSON.parse(s.text()) as unknown;
  } catch {
    return undefined;
  }
}

function parseObject(s: Secret): Record<string, unknown> | null {
  const v = parseJson(s);
  return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : null;
}

/** The table's own path, re-checked: relative, normalised, plain components (it goes into a shell and debugfs). */
function tablePath(relative: string): string {
  if (
    !TABLE_PATH.test(relative) ||
    path.posix.normalize(relative) !== relative ||
    relative.split('/').some((c) => c === '.' || c === '..')
  ) {
    throw new FiredeckError('internal', `The provider table holds an unsafe path (${relative})`);
  }
  return relative;
}
