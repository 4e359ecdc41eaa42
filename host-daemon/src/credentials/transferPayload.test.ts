import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { FiredeckError, type ErrorKind } from '../../../src/shared/errors';
import type { ProviderName } from '../../../src/shared/protocol/providers';
import { Secret } from './secret';
import {
  MAX_CAPTURED_BYTES,
  MAX_JSON_DEPTH,
  mergeJsonCompanion,
  scrubOutput,
  validatePayload,
  type CapturedFile,
  type CredentialPayload,
} from './transferPayload';

const TOKEN = `rt-${randomBytes(10).toString('hex')}`;

function file(p: string, value: unknown, mode = 0o600): CapturedFile {
  return { path: p, content: Secret.from(typeof value === 'string' ? value : JSON.stringify(value)), mode };
}

function payload(provider: string, files: CapturedFile[]): CredentialPayload {
  return { provider: provider as ProviderName, files };
}

const claudeCred = (): CapturedFile =>
  file('.claude/.credentials.json', { claudeAiOauth: { accessToken: TOKEN, refreshToken: TOKEN } });

function refusal(fn: () => unknown): FiredeckError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(FiredeckError);
    return err as FiredeckError;
  }
  throw new Error('expected a refusal');
}

function expectRefused(fn: () => unknown, kind: ErrorKind, message: RegExp): void {
  const err = refusal(fn);
  expect(err.kind).toBe(kind);
  expect(err.message).toMatch(message);
  expect(JSON.stringify(err.toJSON())).not.toContain(TOKEN);
}

describe('validatePayload', () => {
  it('maps the table’s files to /home/firedeck, the credential first, companions marked for a JSON merge', () => {
    const v = validatePayload(
      payload('claude_code', [claudeCred(), file('.claude.json', { hasCompletedOnboarding: 1 })]),
    );
    expect(v.spec.name).toBe('claude_code');
    expect(v.files.map((f) => [f.guestPath, f.merge])).toEqual([
      ['/home/firedeck/.claude/.credentials.json', null],
      ['/home/firedeck/.claude.json', 'json'],
    ]);
    expect(validatePayload(payload('codex', [file('.codex/auth.json', { tokens: {} })])).files).toHaveLength(1);
  });

  it('refuses any path that is not one of the provider’s files, however close', () => {
    for (const p of [
      '/home/firedeck/.codex/auth.json',
      '.codex/../.codex/auth.json',
      './.codex/auth.json',
      '.codex/auth.json ',
      '.ssh/authorized_keys',
      '.claude/.credentials.json',
    ]) {
      expectRefused(
        () => validatePayload(payload('codex', [file(p, { tokens: TOKEN })])),
        'invalid_params',
        /is not one of its files/,
      );
    }
    // Another provider's file is refused as well.
    expectRefused(
      () => validatePayload(payload('codex', [file('.codex/auth.json', { tokens: 1 }), file('.claude.json', {})])),
      'invalid_params',
      /at most 0 companion/,
    );
    expectRefused(
      () =>
        validatePayload(
          payload('gemini_cli', [
            file('.gemini/oauth_creds.json', { access_token: 1, refresh_token: 1 }),
            file('.claude.json', {}),
          ]),
        ),
      'invalid_params',
      /not one of its files/,
    );
  });

  it('refuses an unknown provider, no files, a companion first, a file twice', () => {
    expectRefused(() => validatePayload(payload('github', [claudeCred()])), 'invalid_params', /no known provider/);
    expectRefused(() => validatePayload(payload('claude_code', [])), 'invalid_params', /its credential/);
    expectRefused(
      () => validatePayload(payload('claude_code', [file('.claude.json', {}), claudeCred()])),
      'invalid_params',
      /must start with its credential/,
    );
    expectRefused(
      () => validatePayload(payload('claude_code', [claudeCred(), claudeCred()])),
      'invalid_params',
      /credential twice/,
    );
    const gemini = file('.gemini/oauth_creds.json', { access_token: TOKEN, refresh_token: TOKEN });
    expectRefused(
      () =>
        validatePayload(
          payload('gemini_cli', [gemini, file('.gemini/settings.json', {}), file('.gemini/settings.json', {})]),
        ),
      'invalid_params',
      /given twice/,
    );
  });

  it('refuses content that is not a Secret, too large, not a JSON object, or without the required fields', () => {
    expectRefused(
      () =>
        validatePayload(
          payload('codex', [{ path: '.codex/auth.json', content: TOKEN as unknown as Secret, mode: 0o600 }]),
        ),
      'invalid_params',
      /must be a Secret/,
    );
    const big = `{"tokens":"${'x'.repeat(MAX_CAPTURED_BYTES)}"}`;
    expectRefused(
      () => validatePayload(payload('codex', [file('.codex/auth.json', big)])),
      'invalid_params',
      /larger than 1 MiB/,
    );
    for (const bad of [`{"tokens": "${TOKEN}"`, `["${TOKEN}"]`, `"${TOKEN}"`, 'null']) {
      expectRefused(
        () => validatePayload(payload('codex', [file('.codex/auth.json', bad)])),
        'invalid_params',
        /is not a JSON object/,
      );
    }
    const err = refusal(() =>
      validatePayload(
        payload('selftest', [file('.firedeck-selftest/credentials.json', { access_token: TOKEN, issuer: 'x' })]),
      ),
    );
    expect(err.kind).toBe('invalid_params');
    expect(err.details).toEqual({ missing: ['refresh_token', 'id_token', 'obtained_at'] });
    expect(JSON.stringify(err.toJSON())).not.toContain(TOKEN);
    expectRefused(
      () => validatePayload(payload('codex', [file('.codex/auth.json', { tokens: 1 }, 0o100600)])),
      'invalid_params',
      /not a permission mode/,
    );
  });

  it('checks required fields as own top-level names only (an inherited or nested name does not count)', () => {
    expectRefused(
      () => validatePayload(payload('codex', [file('.codex/auth.json', { nested: { tokens: TOKEN } })])),
      'invalid_params',
      /lacks the field\(s\) tokens/,
    );
    expectRefused(
      () => validatePayload(payload('codex', [file('.codex/auth.json', '{"__proto__": {"tokens": 1}}')])),
      'invalid_params',
      /lacks the field/,
    );
  });
});

describe('mergeJsonCompanion', () => {
  it('keeps the current file’s other keys and lets the captured top-level keys win', () => {
    const current = Secret.from(JSON.stringify({ theme: 'dark', projects: { a: 1 }, oauthAccount: { old: true } }));
    const captured = Secret.from(JSON.stringify({ oauthAccount: { emailAddress: 'u@example.org' }, userID: 'u1' }));
    const merged = mergeJsonCompanion(current, captured, '/home/firedeck/.claude.json');
    expect(JSON.parse(merged.text())).toEqual({
      theme: 'dark',
      projects: { a: 1 },
      oauthAccount: { emailAddress: 'u@example.org' },
      userID: 'u1',
    });
    expect(Object.keys(JSON.parse(merged.text()) as object)).toEqual(['theme', 'projects', 'oauthAccount', 'userID']);
  });

  it('takes the captured bytes as they are when the VM has no such file', () => {
    const captured = Secret.from('{ "security": { "auth": { "selectedType": "oauth-personal" } } }');
    expect(mergeJsonCompanion(null, captured, '/home/firedeck/.gemini/settings.json')).toBe(captured);
  });

  it('refuses a current file that is not a JSON object, naming the path and no content', () => {
    for (const text of [`{"theme": "${TOKEN}"`, `[1, "${TOKEN}"]`, '', 'null']) {
      const err = refusal(() =>
        mergeJsonCompanion(Secret.from(text), Secret.from('{"a":1}'), '/home/firedeck/.claude.json'),
      );
      expect(err.kind).toBe('invalid_state');
      expect(err.message).toBe('/home/firedeck/.claude.json in the VM is not a JSON object; nothing was written');
      expect(err.hint).toMatch(/Fix or remove/);
      expect(JSON.stringify(err.toJSON())).not.toContain(TOKEN);
    }
  });

  it('refuses a merge that would grow beyond 4 MiB', () => {
    const current = Secret.from(JSON.stringify({ history: 'h'.repeat(4 * 1024 * 1024 - 100) }));
    const captured = Secret.from(JSON.stringify({ more: 'm'.repeat(200) }));
    const err = refusal(() => mergeJsonCompanion(current, captured, '/home/firedeck/.claude.json'));
    expect(err.kind).toBe('resource_exhausted');
    const tooBig = Secret.from(JSON.stringify({ history: 'h'.repeat(4 * 1024 * 1024) }));
    expect(refusal(() => mergeJsonCompanion(tooBig, captured, '/home/firedeck/.claude.json')).kind).toBe(
      'resource_exhausted',
    );
  });
});

describe('deeply nested JSON from a guest', () => {
  const nested = (depth: number): string => `{"tokens":${'['.repeat(depth)}"${TOKEN}"${']'.repeat(depth)}}`;

  it('is refused typed at validation, in either side of a merge, and scrubbed without overflowing the stack', () => {
    expect(
      validatePayload(payload('codex', [file('.codex/auth.json', nested(MAX_JSON_DEPTH - 2))])).files,
    ).toHaveLength(1);
    expectRefused(
      () => validatePayload(payload('codex', [file('.codex/auth.json', nested(MAX_JSON_DEPTH))])),
      'invalid_params',
      /nests deeper than 100 levels/,
    );
    // 20 000 deep is 40 kB: JSON.parse takes it, JSON.stringify threw a RangeError before the depth check.
    const deep = Secret.from(nested(20_000));
    const plain = Secret.from('{"a":1}');
    expectRefused(
      () => mergeJsonCompanion(deep, plain, '/home/firedeck/.claude.json'),
      'invalid_state',
      /nests deeper/,
    );
    expectRefused(
      () => mergeJsonCompanion(plain, deep, '/home/firedeck/.claude.json'),
      'invalid_params',
      /nests deeper/,
    );
    // The recursive walk overflowed at this depth; an array too long to spread into push() is fine as well.
    expect(scrubOutput(`said ${TOKEN}`, [Secret.from(nested(200_000))])).toBe('said [redacted]');
    const wide = Secret.from(JSON.stringify({ list: [...Array<string>(300_000).fill('x'), TOKEN] }));
    expect(scrubOutput(`said ${TOKEN}`, [wide])).toBe('said [redacted]');
  });
});

describe('scrubOutput', () => {
  it('removes every string value of the files and their whole text, longest first, and caps the output', () => {
    const cred = Secret.from(JSON.stringify({ tokens: { refresh_token: TOKEN, account_id: 'acct-123456' }, n: 7 }));
    const out = scrubOutput(`error: token ${TOKEN} for acct-123456 rejected; file was ${cred.text()}`, [cred]);
    expect(out).not.toContain(TOKEN);
    expect(out).not.toContain('acct-123456');
    expect(out).toBe('error: token [redacted] for [redacted] rejected; file was [redacted]');
    expect(scrubOutput('y'.repeat(5000), [cred], 100)).toMatch(/^y{100}… \[4900 more characters\]$/);
  });
});
