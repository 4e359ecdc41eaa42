import { describe, expect, it } from 'vitest';
import { SafeName } from '../../../src/shared/protocol/common';
import { DEFAULT_AUTH_TIMEOUTS, parseAuthTimeouts } from '../config';
import { browserVmName, cliVmName } from './authService';

describe('auth session names and settings', () => {
  it('names a user’s CLI VM in VM-name characters, distinct for users that differ only in punctuation or case', () => {
    const users = ['alice@example.org', 'Alice@example.org', 'alice.example.org', 'a+b_c@x.y', '...', 'x'.repeat(128)];
    const names = users.map(cliVmName);
    for (const n of names) expect(SafeName.safeParse(n).success, n).toBe(true);
    expect(new Set(names).size).toBe(users.length);
    expect(cliVmName('alice@example.org')).toMatch(/^cli-alice-example-org-[0-9a-f]{6}$/);
    expect(cliVmName('alice@example.org')).toBe(cliVmName('alice@example.org'));
  });

  it('names the browser VM after its session', () => {
    expect(browserVmName('auth-1d178ebcccfbfb6e')).toBe('auth-1d178ebcccfb');
    expect(SafeName.safeParse(browserVmName('auth-1d178ebcccfbfb6e')).success).toBe(true);
  });

  it('reads auth-timeouts as state=seconds pairs over the defaults, refusing anything else by name', () => {
    expect(parseAuthTimeouts(undefined)).toEqual(DEFAULT_AUTH_TIMEOUTS);
    expect(parseAuthTimeouts('vm_created=5, awaiting_user_auth=60')).toEqual({
      ...DEFAULT_AUTH_TIMEOUTS,
      vm_created: 5,
      awaiting_user_auth: 60,
    });
    for (const bad of ['completed=5', 'vm_created=0', 'vm_created=-1', 'vm_created', 'vm_created=5s', 'nope=1']) {
      expect(() => parseAuthTimeouts(bad), bad).toThrow(/FIREDECK_AUTH_TIMEOUTS must be state=seconds pairs/);
    }
  });
});
