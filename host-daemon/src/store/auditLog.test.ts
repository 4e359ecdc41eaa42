import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { redactSecrets } from './auditLog';

/** Drawn per run (build/scripts/secret-scan.mjs flags constant passwords). */
const password = randomBytes(9).toString('base64url');

describe('redactSecrets (what the audit log keeps of a call’s params)', () => {
  it('replaces secret-looking fields whatever their value', () => {
    expect(redactSecrets({ id: 'auth-1', code: 'ABCD-1234', nested: { vncPassword: password } })).toEqual({
      id: 'auth-1',
      code: '[redacted]',
      nested: { vncPassword: '[redacted]' },
    });
  });

  it('cuts the user and password from any URL in any string, keeping scheme, host and port', () => {
    const out = redactSecrets({
      https: `http://support:${password}@proxy.corp:3128`,
      http: `socks5h://${password}@10.0.0.1:1080/`,
      // An unescaped @ inside the password: everything up to the last @ of the authority goes.
      odd: `http://u:${password}@x@proxy.corp:8080`,
      list: [`see https://a:${password}@h.invalid/path?q=1`],
      plain: 'http://proxy.corp:3128',
    });
    expect(out).toEqual({
      https: 'http://***@proxy.corp:3128',
      http: 'socks5h://***@10.0.0.1:1080/',
      odd: 'http://***@proxy.corp:8080',
      list: ['see https://***@h.invalid/path?q=1'],
      plain: 'http://proxy.corp:3128',
    });
    expect(JSON.stringify(out)).not.toContain(password);
  });
});
