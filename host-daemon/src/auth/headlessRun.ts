import type { HeadlessLoginSpec } from '../../../src/shared/protocol/providers';
import { findError, plainText, readHeadlessOutput, scrubSecrets } from './headlessOutput';
import type { LoginTerminal } from './headlessLogin';

/**
 * Tokens a CLI prints (Claude Code's setup-token: `sk-ant-oat01-…`), JWTs and long opaque runs are never part of
 * an error (as the oauth agent's rule): a CLI that echoes what it received cannot leak it.
 */
const SECRETISH = /sk-ant-[A-Za-z0-9_-]+|eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_.-]+|[A-Za-z0-9_-]{40,}/g;

/** What a headless login showed: its URL (and device code), or the CLI's failure in its words. */
export type HeadlessShown = { url: string; userCode: string | null } | { failed: string };

/**
 * The steps of one headless login over its terminal: answers the table's prompts as they show, reads the URL and
 * code, writes a pasted code, and tells how the login ended. Every text it hands out is scrubbed of the pasted
 * code (a terminal echoes it).
 */
export class HeadlessRun {
  private nextKey = 0;
  /** Where in the plain output the last answered prompt was (a prompt shown again later is a new one). */
  private keysFrom = 0;
  /** The plain output's length when the URL was read: errors after it are the login's. */
  private shownAt = 0;
  private readonly pasted: string[] = [];

  constructor(
    private readonly login: LoginTerminal,
    private readonly spec: HeadlessLoginSpec,
  ) {}

  /** Resolves with the URL (and, for a device-code login, its code), or the CLI's failure before it showed one. */
  waitForUrl(signal: AbortSignal): Promise<HeadlessShown> {
    return this.login.until(() => {
      this.answerPrompts();
      const ended = this.login.ended();
      // Whole lines only: a chunk may end inside a line ("Error logging in: " with its reason still to come).
      const text = wholeLines(this.login.text(), ended !== null);
      const reading = readHeadlessOutput(this.spec, text);
      if (reading.url !== null && (this.spec.kind !== 'device_code' || reading.userCode !== null || ended)) {
        this.shownAt = plainText(text).length;
        return { url: reading.url, userCode: reading.userCode };
      }
      if (reading.error !== null) return { failed: this.scrub(reading.error) };
      if (ended) return { failed: this.endedWithout('printing its authorize URL', ended) };
      return null;
    }, signal);
  }

  /** Writes a pasted code to the login's terminal, as a person types it and presses Enter. */
  submit(code: string): void {
    this.pasted.push(code);
    this.login.send(`${code}\r`);
  }

  /**
   * Resolves once the login ended (exit 0: `failed` null) or said it failed after showing its URL (the CLI's
   * line; a TUI that stays open after an error is ended by the caller).
   */
  waitForEnd(signal: AbortSignal): Promise<{ failed: string | null }> {
    return this.login.until(() => {
      const ended = this.login.ended();
      const text = plainText(wholeLines(this.login.text(), ended !== null));
      const error = findError(text.slice(this.shownAt));
      if (ended && ended.code === 0 && error === null) return { failed: null };
      if (error !== null) return { failed: this.scrub(error) };
      if (ended) return { failed: this.endedWithout('saving a credential', ended) };
      return null;
    }, signal);
  }

  private answerPrompts(): void {
    const text = plainText(this.login.text());
    for (let k = this.nextKey; k < this.spec.keys.length; k++) {
      const key = this.spec.keys[k]!;
      const at = text.indexOf(key.waitFor, this.keysFrom);
      if (at < 0) continue;
      // A later prompt showing means the earlier ones were not asked (a folder trusted already): skip them.
      this.nextKey = k + 1;
      this.keysFrom = at + key.waitFor.length;
      this.login.send(key.send);
      return;
    }
  }

  private endedWithout(what: string, ended: { code: number | null; signal: string | null }): string {
    const last = plainText(this.login.text())
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l !== '')
      .at(-1);
    const how = ended.signal !== null ? `was killed by SIG${ended.signal}` : `exited with ${ended.code ?? 'no status'}`;
    return this.scrub(`it ${how} without ${what}${last ? ` (its last line: ${last.slice(0, 300)})` : ''}`);
  }

  private scrub(text: string): string {
    return scrubSecrets(text, this.pasted).replace(SECRETISH, '[redacted]');
  }
}

/** What the CLI printed up to its last line end; all of it once it has ended. */
function wholeLines(text: string, ended: boolean): string {
  if (ended) return text;
  return text.slice(0, text.lastIndexOf('\n') + 1);
}
