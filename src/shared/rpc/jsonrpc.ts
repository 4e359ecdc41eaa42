import { z } from 'zod';
import { FiredeckError, type RpcErrorObject } from '../errors';

/** JSON-RPC 2.0 message shapes (https://www.jsonrpc.org/specification). */
export const RpcId = z.union([z.string().max(128), z.number().int()]);
export type RpcId = z.infer<typeof RpcId>;

const RpcErrorObjectSchema = z.object({
  code: z.number().int(),
  message: z.string(),
  data: z
    .object({
      kind: z.string(),
      hint: z.string().optional(),
      details: z.record(z.string(), z.unknown()).optional(),
    })
    .optional(),
});

/**
 * Firedeck's one extension of a JSON-RPC 2.0 request: a mutating call may carry a key of the client's choosing,
 * and a call sent again with the same key (after a link died before its answer came) is answered with the first
 * call's outcome instead of being applied twice.
 */
export const IdempotencyKey = z.string().regex(/^[A-Za-z0-9_-]{16,64}$/);
const IDEMPOTENCY_KEY_RULE = 'idempotencyKey must be 16 to 64 characters of A-Z, a-z, 0-9, _ and -';

export const RpcRequest = z.object({
  jsonrpc: z.literal('2.0'),
  id: RpcId,
  method: z.string().min(1).max(128),
  params: z.unknown().optional(),
  idempotencyKey: IdempotencyKey.optional(),
});
export const RpcNotification = z.object({
  jsonrpc: z.literal('2.0'),
  method: z.string().min(1).max(128),
  params: z.unknown().optional(),
});
export const RpcSuccess = z.object({ jsonrpc: z.literal('2.0'), id: RpcId, result: z.unknown() });
export const RpcFailure = z.object({
  jsonrpc: z.literal('2.0'),
  id: RpcId.nullable(),
  error: RpcErrorObjectSchema,
});

export type RpcRequest = z.infer<typeof RpcRequest>;
export type RpcNotification = z.infer<typeof RpcNotification>;
export type RpcSuccess = z.infer<typeof RpcSuccess>;
export type RpcFailure = z.infer<typeof RpcFailure>;

export type IncomingToServer =
  | { type: 'request'; message: RpcRequest }
  | { type: 'notification'; message: RpcNotification }
  | { type: 'invalid'; id: RpcId | null; error: FiredeckError };

/** Classifies one decoded frame that a server received. Never throws. */
export function classifyServerFrame(text: string): IncomingToServer {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return {
      type: 'invalid',
      id: null,
      error: new FiredeckError('parse_error', 'Parse error: frame is not valid JSON'),
    };
  }
  // A batch (JSON-RPC 2.0 §6) is refused whole with one error: every client sends one request per line.
  if (Array.isArray(value)) {
    return {
      type: 'invalid',
      id: null,
      error: new FiredeckError(
        'invalid_request',
        'Invalid Request: batches are not supported; send one request per line',
      ),
    };
  }
  const req = RpcRequest.safeParse(value);
  if (req.success) return { type: 'request', message: req.data };
  const note = RpcNotification.safeParse(value);
  if (note.success && !(typeof value === 'object' && value !== null && 'id' in value)) {
    return { type: 'notification', message: note.data };
  }
  const id =
    typeof value === 'object' &&
    value !== null &&
    'id' in value &&
    RpcId.safeParse((value as { id: unknown }).id).success
      ? ((value as { id: RpcId }).id ?? null)
      : null;
  const badKey =
    typeof value === 'object' &&
    value !== null &&
    'idempotencyKey' in value &&
    !IdempotencyKey.safeParse((value as { idempotencyKey: unknown }).idempotencyKey).success;
  return {
    type: 'invalid',
    id,
    error: new FiredeckError(
      'invalid_request',
      badKey ? `Invalid Request: ${IDEMPOTENCY_KEY_RULE}` : 'Invalid Request: not a JSON-RPC 2.0 request object',
    ),
  };
}

export type IncomingToClient =
  | { type: 'success'; message: RpcSuccess }
  | { type: 'failure'; message: RpcFailure }
  | { type: 'notification'; message: RpcNotification }
  | { type: 'invalid'; reason: string };

/** Classifies one decoded frame that a client received. Never throws. */
export function classifyClientFrame(text: string): IncomingToClient {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return { type: 'invalid', reason: 'frame is not valid JSON' };
  }
  // Failure first: zod's unknown() also accepts a missing `result`, so a failure would pass as a success.
  const fail = RpcFailure.safeParse(value);
  if (fail.success) return { type: 'failure', message: fail.data };
  const ok = RpcSuccess.safeParse(value);
  if (ok.success && typeof value === 'object' && value !== null && 'result' in value) {
    return { type: 'success', message: ok.data };
  }
  const note = RpcNotification.safeParse(value);
  if (note.success) return { type: 'notification', message: note.data };
  return { type: 'invalid', reason: 'not a JSON-RPC 2.0 response or notification' };
}

export function successFrame(id: RpcId, result: unknown): string {
  return JSON.stringify({ jsonrpc: '2.0', id, result });
}

export function failureFrame(id: RpcId | null, error: FiredeckError | RpcErrorObject): string {
  const obj = error instanceof FiredeckError ? error.toJSON() : error;
  return JSON.stringify({ jsonrpc: '2.0', id, error: obj });
}

export function requestFrame(id: RpcId, method: string, params: unknown, idempotencyKey?: string): string {
  return JSON.stringify(
    idempotencyKey === undefined
      ? { jsonrpc: '2.0', id, method, params }
      : { jsonrpc: '2.0', id, method, params, idempotencyKey },
  );
}

export function notificationFrame(method: string, params: unknown): string {
  return JSON.stringify({ jsonrpc: '2.0', method, params });
}
