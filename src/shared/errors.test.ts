import { describe, expect, it } from 'vitest';
import { AppError, FiredeckError, errorCodes, errorFromApp, toAppError } from './errors';

describe('FiredeckError across a boundary', () => {
  it('keeps kind, code, message, hint and details through JSON', () => {
    const err = new FiredeckError('host_key_mismatch', 'host key changed for h', {
      hint: 'verify the new key out of band',
      details: { fingerprint: 'SHA256:abc' },
    });
    const back = FiredeckError.fromJSON(JSON.parse(JSON.stringify(err.toJSON())));
    expect(back).toBeInstanceOf(FiredeckError);
    expect(back.kind).toBe('host_key_mismatch');
    expect(back.code).toBe(errorCodes.host_key_mismatch);
    expect(back.message).toBe('host key changed for h');
    expect(back.hint).toBe('verify the new key out of band');
    expect(back.details).toEqual({ fingerprint: 'SHA256:abc' });
  });

  it('maps a standard JSON-RPC code without data to its kind, and unknown ones to internal', () => {
    expect(FiredeckError.fromJSON({ code: -32601, message: 'x' }).kind).toBe('method_not_found');
    expect(FiredeckError.fromJSON({ code: 12345, message: 'x' }).kind).toBe('internal');
    expect(FiredeckError.fromJSON({ code: -32001, message: 'x', data: { kind: 'bogus' } }).kind).toBe('not_found');
  });

  it('wraps foreign errors without losing the message', () => {
    const wrapped = FiredeckError.from(new TypeError('boom'));
    expect(wrapped.kind).toBe('internal');
    expect(wrapped.message).toBe('boom');
  });

  it('gives every kind a distinct code', () => {
    const codes = Object.values(errorCodes);
    expect(new Set(codes).size).toBe(codes.length);
  });

  it('keeps kind, message, hint and details through the app boundary (main → renderer) and back', () => {
    const err = new FiredeckError('host_key_unknown', 'unknown host key for h', {
      hint: 'compare the fingerprint',
      details: { fingerprint: 'SHA256:abc', keyType: 'ssh-ed25519' },
    });
    const sent = toAppError(err);
    expect(AppError.parse(JSON.parse(JSON.stringify(sent)))).toEqual(sent);
    const back = errorFromApp(sent);
    expect(back).toBeInstanceOf(FiredeckError);
    expect(back).toMatchObject({ kind: 'host_key_unknown', message: 'unknown host key for h', hint: err.hint });
    expect(back.details).toEqual(err.details);
    expect(toAppError(new FiredeckError('timeout', 'slow'))).toEqual({ kind: 'timeout', message: 'slow' });
  });

  it('turns a foreign error into internal for the app, and a kind outside the table back into internal', () => {
    expect(toAppError(new RangeError('bad'))).toEqual({ kind: 'internal', message: 'bad' });
    expect(errorFromApp({ kind: 'from_a_newer_main', message: 'x' }).kind).toBe('internal');
    // Names every object has are not kinds: the table is looked up by its own keys only.
    expect(errorFromApp({ kind: 'toString', message: 'x' }).kind).toBe('internal');
    expect(errorFromApp({ kind: 'constructor', message: 'x' }).code).toBe(errorCodes.internal);
  });
});
