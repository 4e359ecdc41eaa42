import { describe, expect, it } from 'vitest';
import { PROVIDERS, ProviderName } from './providers';

// The browser image's copy of the table's guest half (plain ESM: the oauth agent cannot import TypeScript).
// Imported through a variable so TypeScript does not look for declarations of a .mjs outside the project.
const GUEST_TABLE = '../../../images/browser/files/providers.mjs';

describe('the guest half of the provider table (images/browser/files/providers.mjs)', () => {
  it('equals the login, credential and companions of every provider, and has no other provider', async () => {
    const guest = ((await import(/* @vite-ignore */ GUEST_TABLE)) as { PROVIDERS: Record<string, unknown> }).PROVIDERS;
    expect(Object.keys(guest).sort()).toEqual([...ProviderName.options].sort());
    for (const name of ProviderName.options) {
      const { login, credential, companions } = PROVIDERS[name];
      expect(guest[name], name).toStrictEqual({ login, credential, companions });
    }
  });
});
