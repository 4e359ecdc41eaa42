import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { PROVIDERS } from '../../../src/shared/protocol/providers';
import type { LoginTerminal } from './headlessLogin';
import { HeadlessRun } from './headlessRun';

const raw = (name: string): string => fs.readFileSync(path.join(__dirname, 'testdata', name), 'utf8');

/**
 * A terminal that replays a real CLI's recorded output: each part comes once the keys the CLI waited for were
 * sent (as the real CLI only goes on after them). The parts are cut from the recording at its prompts.
 */
class ReplayedTerminal implements LoginTerminal {
  readonly sent: string[] = [];
  private out = '';
  private exit: { code: number | null; signal: string | null } | null = null;
  private readonly waiters = new Set<() => void>();
  constructor(private readonly parts: { after: number; text: string; exit?: number }[]) {
    this.flush();
  }
  text(): string {
    return this.out;
  }
  ended(): { code: number | null; signal: string | null } | null {
    return this.exit;
  }
  send(keys: string): void {
    this.sent.push(keys);
    this.flush();
  }
  until<T>(test: () => T | null, signal: AbortSignal): Promise<T> {
    return new Promise((resolve, reject) => {
      const check = (): void => {
        if (signal.aborted) return reject(new Error('aborted'));
        const v = test();
        if (v !== null) {
          this.waiters.delete(check);
          resolve(v);
        }
      };
      this.waiters.add(check);
      signal.addEventListener('abort', check, { once: true });
      check();
    });
  }
  /** Output that comes now, chunk by chunk: each is seen by the waiting check before the next. */
  push(text: string, exit?: number): void {
    this.parts.push({ after: this.sent.length, text, ...(exit !== undefined ? { exit } : {}) });
    this.flush();
  }
  private flush(): void {
    while (this.parts.length > 0 && this.parts[0]!.after <= this.sent.length) {
      const p = this.parts.shift()!;
      this.out += p.text;
      if (p.exit !== undefined) this.exit = { code: p.exit, signal: null };
      for (const w of [...this.waiters]) w();
    }
  }
}

/** The recording cut just after each of the given markers (first occurrence at or after the previous cut). */
function cut(all: string, markers: string[]): string[] {
  const parts: string[] = [];
  let from = 0;
  for (const m of markers) {
    const at = all.indexOf(m, from) + m.length;
    parts.push(all.slice(from, at));
    from = at;
  }
  parts.push(all.slice(from));
  return parts;
}

const signal = new AbortController().signal;
const PASTED = '4/0AVGzR1Bq-FiredeckPastedCode_x7Q';

describe('a headless login driven over its terminal, replaying the real CLIs', () => {
  it('gemini: trust and sign-in answered in order, the URL at the code prompt, the code typed, its error', async () => {
    const all = raw('gemini-no-browser.txt');
    // The recording's pasted code came early (typed ahead); only the parts after the keys matter here.
    const [trust, signIn, toPrompt, rest] = cut(all, [
      'Do you trust the files in this folder?',
      'Sign in with Google',
      'Enter the authorization code: ',
    ]);
    const term = new ReplayedTerminal([
      { after: 0, text: trust! },
      { after: 1, text: signIn! },
      { after: 2, text: toPrompt! },
      { after: 3, text: rest! },
    ]);
    const run = new HeadlessRun(term, PROVIDERS.gemini_cli.headless!);
    const shown = await run.waitForUrl(signal);
    expect(term.sent).toEqual(['\r', '\r']);
    expect(shown).toMatchObject({ userCode: null });
    expect('url' in shown && shown.url).toMatch(/^https:\/\/accounts\.google\.com\/o\/oauth2\/v2\/auth\?redirect_uri=/);
    run.submit(PASTED);
    expect(term.sent.at(-1)).toBe(`${PASTED}\r`);
    const ended = await run.waitForEnd(signal);
    expect(ended.failed).toBe(
      'Failed to authenticate with authorization code:request to https://oauth2.googleapis.com/token failed, ' +
        'reason: getaddrinfo ENOTFOUND oauth2.googleapis.com',
    );
  });

  it('claude: the URL, then its error after the code, scrubbed of the code', async () => {
    const all = raw('claude-setup-token.txt');
    const [toPrompt, rest] = cut(all, ['Paste\x1b[8Gcode\x1b[13Ghere\x1b[18Gif\x1b[21Gprompted']);
    // As if the CLI echoed the code in its error line.
    const echoed = rest!.replace('OAuth error:', `OAuth error (${PASTED}):`);
    const term = new ReplayedTerminal([
      { after: 0, text: toPrompt! },
      { after: 1, text: echoed },
    ]);
    const run = new HeadlessRun(term, PROVIDERS.claude_code.headless!);
    expect(await run.waitForUrl(signal)).toEqual({
      url: 'https://claude.ai/oauth/authorize?IEjkw5234V4rl26SCPN6wXZK3IO8NciGvqihguGYb4po',
      userCode: null,
    });
    run.submit(PASTED);
    const ended = await run.waitForEnd(signal);
    expect(ended.failed).toMatch(/^✘ OAuth error \(\[redacted\]\): Couldn't get an answer .*ENOTFOUND/);
    expect(ended.failed).not.toContain(PASTED);
  });

  it('codex offline: its error before any link ends the login (the URL in the error is not shown)', async () => {
    const term = new ReplayedTerminal([{ after: 0, text: raw('codex-device-auth.txt'), exit: 1 }]);
    const run = new HeadlessRun(term, PROVIDERS.codex.headless!);
    expect(await run.waitForUrl(signal)).toEqual({
      failed:
        'Error logging in: error sending request for url (https://auth.openai.com/api/accounts/deviceauth/usercode)',
    });
  });

  it('a login that exits without a URL or an error says how it ended, with its last line', async () => {
    const term = new ReplayedTerminal([{ after: 0, text: 'Welcome\r\nbye now\r\n', exit: 3 }]);
    const run = new HeadlessRun(term, PROVIDERS.codex.headless!);
    expect(await run.waitForUrl(signal)).toEqual({
      failed: 'it exited with 3 without printing its authorize URL (its last line: bye now)',
    });
  });

  it('reads an error line only once it is whole (a chunk may end inside it, as seen in a CLI VM)', async () => {
    const term = new ReplayedTerminal([]);
    const run = new HeadlessRun(term, PROVIDERS.codex.headless!);
    const shown = run.waitForUrl(signal);
    term.push('Error logging in: ');
    term.push('error sending request for url ');
    term.push('(https://auth.openai.com/api/accounts/deviceauth/usercode)\r\n');
    expect(await shown).toEqual({
      failed:
        'Error logging in: error sending request for url (https://auth.openai.com/api/accounts/deviceauth/usercode)',
    });
  });

  it('takes a last line without its end once the CLI has exited', async () => {
    const term = new ReplayedTerminal([]);
    const run = new HeadlessRun(term, PROVIDERS.codex.headless!);
    const shown = run.waitForUrl(signal);
    term.push('Error logging in: no network', 1);
    expect(await shown).toEqual({ failed: 'Error logging in: no network' });
  });
});
