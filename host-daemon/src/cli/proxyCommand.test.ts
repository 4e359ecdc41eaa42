import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { describeProxy, parseProxyArgs, parseProxyInput } from './proxyCommand';

const password = randomBytes(9).toString('base64url');

describe('firedeckd proxy argv and stdin', () => {
  it('parses show, set, clear and help', () => {
    expect(parseProxyArgs([])).toEqual({ sub: 'help' });
    expect(parseProxyArgs(['--help'])).toEqual({ sub: 'help' });
    expect(parseProxyArgs(['show'])).toEqual({ sub: 'show', json: false });
    expect(parseProxyArgs(['show', '--json'])).toEqual({ sub: 'show', json: true });
    expect(parseProxyArgs(['set'])).toEqual({ sub: 'set' });
    expect(parseProxyArgs(['clear'])).toEqual({ sub: 'clear' });
  });

  it('refuses a URL in argv without echoing it, and unknown commands', () => {
    let caught: unknown;
    try {
      parseProxyArgs(['set', `http://u:${password}@proxy:3128`]);
    } catch (err) {
      caught = err;
    }
    expect(caught).toMatchObject({ kind: 'invalid_params', message: 'proxy set: unexpected argument 1' });
    expect(JSON.stringify({ ...(caught as object), message: (caught as Error).message })).not.toContain(password);
    expect(() => parseProxyArgs(['enable'])).toThrow(/unknown command/);
    expect(() => parseProxyArgs(['clear', '--force'])).toThrow(/unexpected argument 1/);
  });

  it('reads the settings as JSON and names a bad field without its value', () => {
    expect(parseProxyInput(`{"https":"http://u:${password}@p:3128","noProxy":[".corp"]}`)).toEqual({
      https: `http://u:${password}@p:3128`,
      noProxy: ['.corp'],
    });
    expect(() => parseProxyInput(`https=http://u:${password}@p`)).toThrow(/stdin is not JSON/);
    let caught: unknown;
    try {
      parseProxyInput(JSON.stringify({ https: `http://u:${password}@p`, proxyUser: password }));
    } catch (err) {
      caught = err;
    }
    expect(caught).toMatchObject({ kind: 'invalid_params' });
    expect((caught as Error).message).toMatch(/^proxy set: .*unrecognized_keys/);
    expect((caught as Error).message).not.toContain(password);
  });

  it('describes the redacted view', () => {
    expect(describeProxy({ configured: false, http: null, https: null, noProxy: [] })).toMatch(/^proxy: none/);
    expect(
      describeProxy({ configured: true, http: null, https: 'http://***@p:3128', noProxy: ['.corp', '10.0.0.0/8'] }),
    ).toContain('https:    http://***@p:3128\nno proxy: .corp, 10.0.0.0/8\n');
  });
});
