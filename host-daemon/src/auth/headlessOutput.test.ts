import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { PROVIDERS } from '../../../src/shared/protocol/providers';
import { findAuthorizeUrl, findError, plainText, readHeadlessOutput, scrubSecrets } from './headlessOutput';

/**
 * Fed with what the real CLIs (the cli image's pinned codex 0.171.0, claude 2.1.332, gemini 0.61.0) printed on a
 * 100-column pty, offline, as their headless logins (testdata/, raw bytes with every escape).
 */
const raw = (name: string): string => fs.readFileSync(path.join(__dirname, 'testdata', name), 'utf8');
const codex = PROVIDERS.codex.headless!;
const gemini = PROVIDERS.gemini_cli.headless!;
const claude = PROVIDERS.claude_code.headless!;

describe('headless login output, real CLIs', () => {
  it('codex --device-auth offline: its network error, and the URL inside that error is not an authorize URL', () => {
    const r = readHeadlessOutput(codex, raw('codex-device-auth.txt'));
    expect(r).toEqual({
      url: null,
      userCode: null,
      error:
        'Error logging in: error sending request for url (https://auth.openai.com/api/accounts/deviceauth/usercode)',
    });
  });

  it('codex --device-auth online: the link and the one-time code (its text, as codex-rs prints it)', () => {
    const out =
      "\r\nWelcome to Codex [v\x1b[90m0.171.0\x1b[0m]\r\n\x1b[90mOpenAI's command-line coding agent\x1b[0m\r\n\r\n" +
      'Follow these steps to sign in with ChatGPT using device code authorization:\r\n\r\n' +
      '1. Open this link in your browser and sign in to your account\r\n   \x1b[94mhttps://auth.openai.com/codex/device\x1b[0m\r\n\r\n' +
      '2. Enter this one-time code \x1b[90m(expires in 15 minutes)\x1b[0m\r\n   \x1b[94mK7QX-4JDR9\x1b[0m\r\n\r\n';
    expect(readHeadlessOutput(codex, out)).toEqual({
      url: 'https://auth.openai.com/codex/device',
      userCode: 'K7QX-4JDR9',
      error: null,
    });
  });

  it("gemini with NO_BROWSER: Google's whole authorize URL at the code prompt, past the Ink dialogs", () => {
    const all = raw('gemini-no-browser.txt');
    const prompt = all.indexOf('Enter the authorization code:');
    const r = readHeadlessOutput(gemini, all.slice(0, prompt + 40));
    expect(r.error).toBeNull();
    expect(r.userCode).toBeNull();
    const url = new URL(r.url!);
    expect(url.origin + url.pathname).toBe('https://accounts.google.com/o/oauth2/v2/auth');
    expect(url.searchParams.get('client_id')).toBe(
      '681255809395-oo8ft2oprdrnp9e3aqf6av3hmdib135j.apps.googleusercontent.com',
    );
    expect(url.searchParams.get('redirect_uri')).toBe('https://codeassist.google.com/authcode');
    expect(url.searchParams.get('code_challenge_method')).toBe('S256');
    expect(url.searchParams.get('response_type')).toBe('code');
    // The terms-of-service link of its auth dialog is of another origin: never taken.
    expect(plainText(all)).toContain('https://geminicli.com/docs/resources/tos-privacy/');
  });

  it('gemini: a log line of its own about the IDE connection is not the login failing (seen in a CLI VM)', () => {
    const all = raw('gemini-no-browser.txt');
    const prompt = all.indexOf('Enter the authorization code:');
    const debug =
      "[DEBUG] [IDEConnectionUtils] Failed to read IDE connection directory: Error: ENOENT: no such file or directory, scandir '/tmp/gemini/ide'\r\n";
    const r = readHeadlessOutput(gemini, debug + all.slice(0, prompt + 40));
    expect(r.error).toBeNull();
    expect(new URL(r.url!).origin).toBe('https://accounts.google.com');
    expect(findError(`${debug}Error: request failed\n`)).toBe('Error: request failed');
  });

  it('gemini after a pasted code: its network error, in its words (the first, not the retry after it)', () => {
    const all = plainText(raw('gemini-no-browser.txt'));
    const after = all.slice(all.indexOf('Enter the authorization code:'));
    expect(findError(after)).toBe(
      'Failed to authenticate with authorization code:request to https://oauth2.googleapis.com/token failed, ' +
        'reason: getaddrinfo ENOTFOUND oauth2.googleapis.com',
    );
  });

  it('gemini, the URL wrapped across lines at the terminal width (as an Ink box lays it out): joined again', () => {
    const all = plainText(raw('gemini-no-browser.txt'));
    const url = findAuthorizeUrl(all, gemini.urlOrigins)!;
    // The same text laid out by a TUI at 100 columns in a box: `│ ` … ` │` around each piece.
    const width = 94;
    const pieces = url.match(new RegExp(`.{1,${width}}`, 'g'))!;
    expect(pieces.length).toBeGreaterThan(4);
    const boxed = [
      '│ Please visit the following URL to authorize the application:'.padEnd(width + 4) + '│',
      `│${' '.repeat(width + 3)}│`,
      ...pieces.map((p) => `│ ${p.padEnd(width)}  │`),
      `│${' '.repeat(width + 3)}│`,
      '│ Enter the authorization code:'.padEnd(width + 4) + '│',
    ].join('\r\n');
    expect(findAuthorizeUrl(plainText(boxed), gemini.urlOrigins)).toBe(url);
    // Unboxed, as a terminal that breaks the line itself would have it.
    expect(findAuthorizeUrl(pieces.join('\n') + '\n\nEnter the authorization code:', gemini.urlOrigins)).toBe(url);
  });

  it('claude setup-token: its authorize URL (words split by cursor moves), then its network error after a code', () => {
    const all = raw('claude-setup-token.txt');
    const text = plainText(all);
    expect(text).toContain("Browser didn't open? Use the URL below to sign in (c to copy)");
    expect(text).toContain('Paste code here if prompted');
    const r = readHeadlessOutput(claude, all);
    expect(r.url).toBe('https://claude.ai/oauth/authorize?IEjkw5234V4rl26SCPN6wXZK3IO8NciGvqihguGYb4po');
    expect(r.error).toBe(
      "✘ OAuth error: Couldn't get an answer from the sign-in service (ENOTFOUND). Check your internet connection, then try again.",
    );
  });
});

describe('headless login output, the rules', () => {
  it('only a URL of the provider’s origins, https, without credentials', () => {
    const o = ['https://accounts.google.com'];
    expect(findAuthorizeUrl('see https://evil.example/https://accounts.google.com/x', o)).toBeNull();
    expect(findAuthorizeUrl('go http://accounts.google.com/o/oauth2/v2/auth?x=1', o)).toBeNull();
    // secret-scan: allow a URL carrying credentials, which the parser must refuse
    expect(findAuthorizeUrl('go https://u:p@accounts.google.com/o/oauth2', o)).toBeNull();
    expect(findAuthorizeUrl('go https://accounts.google.com.evil.example/o', o)).toBeNull();
    expect(findAuthorizeUrl('a https://geminicli.com/tos\nb https://accounts.google.com/o?a=1 c', o)).toBe(
      'https://accounts.google.com/o?a=1',
    );
  });

  it('a short URL line followed by text is not joined with it', () => {
    const o = ['https://claude.ai'];
    expect(findAuthorizeUrl('https://claude.ai/oauth/authorize?x=1\nPaste\n', o)).toBe(
      'https://claude.ai/oauth/authorize?x=1',
    );
  });

  it('scrubs a pasted code from what is reported', () => {
    expect(scrubSecrets('bad code 4/0Abc: 4/0Abc refused', ['4/0Abc'])).toBe('bad code [redacted]: [redacted] refused');
    expect(scrubSecrets('nothing', [''])).toBe('nothing');
  });
});
