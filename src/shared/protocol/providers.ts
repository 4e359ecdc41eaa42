import { z } from 'zod';

/**
 * The CLIs whose OAuth login Firedeck completes on a user's behalf, one table (ARCHITECTURE.md, "Credentials").
 * Nothing here is ever taken from input: an RPC names a provider, and every path, argv and environment comes
 * from this table. The guest half of each row (how the oauth agent starts the login, where the files appear)
 * is repeated in the browser image's `providers.mjs`, which cannot import TypeScript; a unit test keeps the two
 * equal.
 */
export const ProviderName = z.enum(['codex', 'claude_code', 'gemini_cli', 'selftest']);
export type ProviderName = z.infer<typeof ProviderName>;

/** A file of the desktop / CLI user's home (`/home/firedeck`), relative to it; never absolute, never `..`. */
export interface ProviderFile {
  /** Relative to the user's home, e.g. `.codex/auth.json`. */
  path: string;
  /** Top-level JSON fields the file must have (names only: a value is never looked at or logged). */
  requiredFields: readonly string[];
}

/** A file the CLI also needs beside its credential; merged into the CLI VM's copy (JSON, captured keys win). */
export interface CompanionFile extends ProviderFile {
  merge: 'json';
}

/** How the login starts in the browser VM, as the desktop user, with a clean environment (DISPLAY set, no CI). */
export interface LoginSpec {
  argv: readonly string[];
  /** Extra environment for the login (never secrets; the selftest issuer comes from the config drive). */
  env: Readonly<Record<string, string>>;
  /** A pty (Gemini's interactive login) or plain pipes. */
  tty: boolean;
  /**
   * Keys written to the pty once its output matches `waitFor`, in order; a prompt that does not come (a folder
   * trusted already) is skipped when a later one shows. Gemini 0.61: the trust dialog, the auth menu ("Sign in
   * with Google"), then "Opening authentication page in your browser. Do you want to continue?".
   */
  keys: readonly { waitFor: string; send: string }[];
  /** How the CLI opens its authorize URL: `$BROWSER`, or `xdg-open` for a CLI that ignores `$BROWSER`. */
  urlVia: 'BROWSER' | 'xdg-open';
}

/**
 * A login that needs no browser VM: it runs in the CLI VM itself, over its sshd, as its user, and shows a URL and
 * a code (or takes one pasted back on its terminal).
 */
export interface HeadlessLoginSpec {
  argv: readonly string[];
  env: Readonly<Record<string, string>>;
  tty: boolean;
  /**
   * device_code: the CLI prints a URL and a one-time code and polls (nothing is pasted back);
   * paste_code: it prints a URL and waits for the code the provider's page shows, pasted into its terminal;
   * print_token: like paste_code, but at the end it prints a token instead of saving a credential.
   */
  kind: 'device_code' | 'paste_code' | 'print_token';
  /** Prompts answered on the pty before the URL comes (as LoginSpec.keys). */
  keys: readonly { waitFor: string; send: string }[];
  /** The origins a printed URL must have to be shown (`https://host`); any other URL in the output is ignored. */
  urlOrigins: readonly string[];
}

export interface ProviderSpec {
  name: ProviderName;
  label: string;
  /** The npm package whose pinned version the images install (null: the image's own program). */
  npmPackage: string | null;
  login: LoginSpec;
  headless: HeadlessLoginSpec | null;
  credential: ProviderFile;
  companions: readonly CompanionFile[];
  /** Run in the CLI VM as its user after a write; exit 0 means logged in. Null: the file's shape is the check. */
  statusCheck: readonly string[] | null;
}

export const PROVIDERS: Readonly<Record<ProviderName, ProviderSpec>> = {
  codex: {
    name: 'codex',
    label: 'Codex',
    npmPackage: '@openai/codex',
    login: {
      // The credential store must be `file`, or Codex keeps the login in a keyring the agent cannot see.
      argv: ['codex', '-c', 'cli_auth_credentials_store="file"', 'login'],
      env: {},
      tty: false,
      keys: [],
      urlVia: 'BROWSER',
    },
    headless: {
      argv: ['codex', '-c', 'cli_auth_credentials_store="file"', 'login', '--device-auth'],
      env: {},
      tty: true,
      kind: 'device_code',
      keys: [],
      urlOrigins: ['https://auth.openai.com'],
    },
    credential: { path: '.codex/auth.json', requiredFields: ['tokens'] },
    companions: [],
    statusCheck: ['codex', '-c', 'cli_auth_credentials_store="file"', 'login', 'status'],
  },
  claude_code: {
    name: 'claude_code',
    label: 'Claude Code',
    npmPackage: '@anthropic-ai/claude-code',
    login: { argv: ['claude', 'auth', 'login'], env: {}, tty: false, keys: [], urlVia: 'BROWSER' },
    // setup-token prints (never saves) an inference-only token; the session does not keep it (README, "Headless
    // logins"), so this login shows the URL and takes the code, and its success ends as a refusal.
    headless: {
      argv: ['claude', 'setup-token'],
      env: {},
      tty: true,
      kind: 'print_token',
      keys: [],
      urlOrigins: [
        'https://claude.ai',
        'https://claude.com',
        'https://platform.claude.com',
        'https://console.anthropic.com',
      ],
    },
    credential: { path: '.claude/.credentials.json', requiredFields: ['claudeAiOauth'] },
    companions: [{ path: '.claude.json', requiredFields: [], merge: 'json' }],
    statusCheck: ['claude', 'auth', 'status', '--json'],
  },
  gemini_cli: {
    name: 'gemini_cli',
    label: 'Gemini CLI',
    npmPackage: '@google/gemini-cli',
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
    // NO_BROWSER switches the interactive login to paste-the-code: it prints the URL and waits for the code.
    headless: {
      argv: ['gemini'],
      env: { NO_BROWSER: 'true' },
      tty: true,
      kind: 'paste_code',
      keys: [
        { waitFor: 'Do you trust', send: '\r' },
        { waitFor: 'Sign in with Google', send: '\r' },
      ],
      urlOrigins: ['https://accounts.google.com'],
    },
    credential: { path: '.gemini/oauth_creds.json', requiredFields: ['access_token', 'refresh_token'] },
    companions: [
      { path: '.gemini/settings.json', requiredFields: [], merge: 'json' },
      { path: '.gemini/google_accounts.json', requiredFields: [], merge: 'json' },
    ],
    statusCheck: null,
  },
  selftest: {
    name: 'selftest',
    label: 'Self-test (local OpenID provider)',
    npmPackage: null,
    login: { argv: ['firedeck-selftest-login'], env: {}, tty: false, keys: [], urlVia: 'BROWSER' },
    headless: null,
    credential: {
      path: '.firedeck-selftest/credentials.json',
      requiredFields: ['issuer', 'access_token', 'refresh_token', 'id_token', 'obtained_at'],
    },
    companions: [],
    statusCheck: ['firedeck-selftest-login', 'status'],
  },
};

/** Every file of a provider's login, the credential first. */
export function providerFiles(spec: ProviderSpec): ProviderFile[] {
  return [spec.credential, ...spec.companions];
}
