// The guest half of src/shared/protocol/providers.ts (the single source): how the oauth agent starts each
// provider's login and where its files appear, relative to the desktop user's home. This file cannot import
// TypeScript, so src/shared/protocol/providers.test.ts keeps it equal to the table's `login`, `credential` and
// `companions` fields: change both together.
export const PROVIDERS = {
  codex: {
    login: {
      argv: ['codex', '-c', 'cli_auth_credentials_store="file"', 'login'],
      env: {},
      tty: false,
      keys: [],
      urlVia: 'BROWSER',
    },
    credential: { path: '.codex/auth.json', requiredFields: ['tokens'] },
    companions: [],
  },
  claude_code: {
    login: { argv: ['claude', 'auth', 'login'], env: {}, tty: false, keys: [], urlVia: 'BROWSER' },
    credential: { path: '.claude/.credentials.json', requiredFields: ['claudeAiOauth'] },
    companions: [{ path: '.claude.json', requiredFields: [], merge: 'json' }],
  },
  gemini_cli: {
    login: {
      argv: ['gemini'],
      env: {},
      tty: true,
      keys: [
        { waitFor: 'Do you trust', send: '\r' },
        { waitFor: 'Sign in with Google', send: '\r' },
        { waitFor: 'Do you want to continue', send: '\r' },
      ],
      urlVia: 'xdg-open',
    },
    credential: { path: '.gemini/oauth_creds.json', requiredFields: ['access_token', 'refresh_token'] },
    companions: [
      { path: '.gemini/settings.json', requiredFields: [], merge: 'json' },
      { path: '.gemini/google_accounts.json', requiredFields: [], merge: 'json' },
    ],
  },
  selftest: {
    login: { argv: ['firedeck-selftest-login'], env: {}, tty: false, keys: [], urlVia: 'BROWSER' },
    credential: {
      path: '.firedeck-selftest/credentials.json',
      requiredFields: ['issuer', 'access_token', 'refresh_token', 'id_token', 'obtained_at'],
    },
    companions: [],
  },
};
