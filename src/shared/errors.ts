import { z } from 'zod';

/**
 * One table of error kinds for every boundary (RPC, IPC, CLI), and every conversion of an error for a boundary:
 * the JSON-RPC error object (`toJSON`/`fromJSON`, daemon ↔ its clients) and the app's error
 * (`toAppError`/`errorFromApp`, main ↔ renderer). Each kind has a JSON-RPC code; the
 * standard JSON-RPC 2.0 codes keep their meaning, Firedeck's own live in the server range.
 */
export const errorCodes = {
  parse_error: -32700,
  invalid_request: -32600,
  method_not_found: -32601,
  invalid_params: -32602,
  internal: -32603,
  not_found: -32001,
  conflict: -32002,
  invalid_state: -32003,
  timeout: -32004,
  unavailable: -32005,
  permission_denied: -32006,
  frame_too_large: -32007,
  resource_exhausted: -32008,
  build_failed: -32009,
  cancelled: -32010,
  /** Stored data failed its integrity check (a vault record's authentication tag, an undo log's checksum). */
  integrity: -32011,
  host_key_mismatch: -32050,
  host_key_unknown: -32051,
  connection_failed: -32052,
  auth_failed: -32053,
  disconnected: -32054,
  unauthorized: -32055,
} as const;

export type ErrorKind = keyof typeof errorCodes;

const kindByCode = new Map<number, ErrorKind>(
  (Object.entries(errorCodes) as [ErrorKind, number][]).map(([kind, code]) => [code, kind]),
);

/** The error object of a JSON-RPC 2.0 response, as Firedeck fills it. */
export interface RpcErrorObject {
  code: number;
  message: string;
  data?: { kind: ErrorKind; hint?: string; details?: Record<string, unknown> };
}

/** An error object as received from a peer, before its kind is checked against the table. */
export interface WireError {
  code: number;
  message: string;
  data?: { kind?: string; hint?: string; details?: Record<string, unknown> };
}

/**
 * An error as it crosses the app's boundary (main → renderer: call envelopes, host statuses, a channel's end):
 * what the UI needs to show a failure and its fix. `kind` is a string: the renderer may meet kinds it predates.
 */
export const AppError = z.object({
  kind: z.string(),
  message: z.string(),
  hint: z.string().optional(),
  details: z.record(z.string(), z.unknown()).optional(),
});
export type AppError = z.infer<typeof AppError>;

export interface ErrorOptions {
  hint?: string;
  details?: Record<string, unknown>;
  cause?: unknown;
}

/** The one error type of Firedeck: a kind from the table, a message, an optional hint that says the fix. */
export class FiredeckError extends Error {
  readonly kind: ErrorKind;
  readonly hint: string | undefined;
  readonly details: Record<string, unknown> | undefined;

  constructor(kind: ErrorKind, message: string, options: ErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'FiredeckError';
    this.kind = kind;
    this.hint = options.hint;
    this.details = options.details;
  }

  get code(): number {
    return errorCodes[this.kind];
  }

  toJSON(): RpcErrorObject {
    const data: NonNullable<RpcErrorObject['data']> = { kind: this.kind };
    if (this.hint !== undefined) data.hint = this.hint;
    if (this.details !== undefined) data.details = this.details;
    return { code: this.code, message: this.message, data };
  }

  /** Rebuilds an error that crossed a boundary; unknown kinds and codes become `internal`. */
  static fromJSON(obj: WireError): FiredeckError {
    return rebuild(kindOf(obj.data?.kind, obj.code), obj.message, obj.data);
  }

  /** Wraps anything thrown into a FiredeckError without leaking stack traces across the wire. */
  static from(err: unknown, fallback: ErrorKind = 'internal'): FiredeckError {
    if (err instanceof FiredeckError) return err;
    const message = err instanceof Error ? err.message : String(err);
    return new FiredeckError(fallback, message, { cause: err });
  }
}

/** The app's form of any error (a foreign one becomes `internal`, as in {@link FiredeckError.from}). */
export function toAppError(err: unknown): AppError {
  const e = FiredeckError.from(err);
  const out: AppError = { kind: e.kind, message: e.message };
  if (e.hint !== undefined) out.hint = e.hint;
  if (e.details !== undefined) out.details = e.details;
  return out;
}

/** Turns an app error back into a FiredeckError (kind, hint and details kept; an unknown kind is `internal`). */
export function errorFromApp(error: AppError): FiredeckError {
  return rebuild(kindOf(error.kind, undefined), error.message, error);
}

/** A kind a peer claimed, if it is one of the table's; else the kind of its code; else `internal`. */
function kindOf(claimed: string | undefined, code: number | undefined): ErrorKind {
  if (claimed !== undefined && Object.prototype.hasOwnProperty.call(errorCodes, claimed)) return claimed as ErrorKind;
  return (code === undefined ? undefined : kindByCode.get(code)) ?? 'internal';
}

function rebuild(
  kind: ErrorKind,
  message: string,
  extra: { hint?: string | undefined; details?: Record<string, unknown> | undefined } | undefined,
): FiredeckError {
  const options: ErrorOptions = {};
  if (extra?.hint !== undefined) options.hint = extra.hint;
  if (extra?.details !== undefined) options.details = extra.details;
  return new FiredeckError(kind, message, options);
}

export function isFiredeckError(err: unknown, kind?: ErrorKind): err is FiredeckError {
  return err instanceof FiredeckError && (kind === undefined || err.kind === kind);
}
