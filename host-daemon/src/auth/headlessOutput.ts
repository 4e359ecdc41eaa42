import type { HeadlessLoginSpec } from '../../../src/shared/protocol/providers';

/**
 * Reading a headless login's terminal output (the CLI runs on a pty in the CLI VM): the authorize URL of the
 * provider's expected origin, the one-time code a device-code login prints, and the CLI's own error line.
 * Pure functions over the text, fed in tests with what the real CLIs printed.
 */

/** What the output says so far. */
export interface HeadlessReading {
  /** The first URL of one of the provider's origins, whole again where the terminal wrapped it. */
  url: string | null;
  /** A device-code login's one-time code (shown to the user: it is not a secret). */
  userCode: string | null;
  /** The CLI's own error, in its words (the last line that says error or failed). */
  error: string | null;
}

// Escapes as a terminal reads them: CSI (colours, modes, cursor moves, erases), OSC (titles, hyperlinks; ended
// by BEL or ST), and two-character escapes (charsets, save/restore cursor).
// eslint-disable-next-line no-control-regex
const CSI = /\x1b\[([0-?]*)[ -/]*([@-~])/g;
// eslint-disable-next-line no-control-regex
const OSC = /\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)/g;
// eslint-disable-next-line no-control-regex
const SHORT_ESCAPE = /\x1b[()][0-9A-Za-z]|\x1b[@-Z\\-_0-9=>]/g;
// eslint-disable-next-line no-control-regex
const CONTROLS = /[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]/g;

/**
 * The output as plain lines. A cursor move along the line (Claude Code's TUI puts one between words instead of
 * a space) becomes a space; a move to another line or an erase (a TUI redrawing) ends the line; colours, modes
 * and OSC (a hyperlink's target repeats the visible text) go; CR…LF and a lone CR end a line.
 */
export function plainText(output: string): string {
  return output
    .replace(OSC, '')
    .replace(CSI, (_, _params: string, final: string) =>
      final === 'G' || final === 'C' ? ' ' : 'ABEFHJKf'.includes(final) ? '\n' : '',
    )
    .replace(SHORT_ESCAPE, '')
    .replace(/\r*\n|\r/g, '\n')
    .replace(CONTROLS, '');
}

/** A line in which the CLI says it failed (its own words). */
const ERROR_LINE = /\b(error|failed|failure|unable to|could not|ENOTFOUND|EAI_AGAIN|ECONNREFUSED|ETIMEDOUT)\b/i;

/**
 * A warning is not the failure, even when it says "could not" (Codex warns about its PATH aliases), nor is a log
 * line a CLI writes about itself: Gemini CLI in a CLI VM prints `[DEBUG] [IDEConnectionUtils] Failed to read IDE
 * connection directory: Error: ENOENT …` before its sign-in prompt, and goes on.
 */
const WARNING = /^(?:⚠\s*)?(?:warning\b|\[(?:debug|info|warn|warning|trace)\])/i;

/** Characters a URL of the providers' may hold (RFC 3986 unreserved, reserved and `%`). */
const URL_CHARS = /^[A-Za-z0-9\-._~:/?#[\]@!$&'()*+,;=%]+$/;
const URL_PREFIX = /^[A-Za-z0-9\-._~:/?#[\]@!$&'()*+,;=%]+/;
/** Box-drawing borders a TUI puts around a wrapped line (`│ … │`). */
const BORDER = /^[\s│┃|]+|[\s│┃|]+$/g;

/**
 * The first `https://` URL of an allowed origin, its pieces joined where the terminal (or the CLI's own text
 * layout) wrapped it: a line that holds only URL characters continues it, an empty line or one with a space ends
 * it. Null if none is printed (yet); a URL of any other origin is never returned.
 */
export function findAuthorizeUrl(text: string, origins: readonly string[]): string | null {
  const lines = text.split('\n').map((l) => l.replace(BORDER, ''));
  // The widest line is the wrap width (the pty's columns less the TUI's margins).
  const width = Math.max(0, ...lines.map((l) => l.trimEnd().length));
  for (let i = 0; i < lines.length; i++) {
    const at = lines[i]!.indexOf('https://');
    // A URL in an error (Codex: "error sending request for url (https://auth.openai.com/…)") is not one to open.
    if (at < 0 || ERROR_LINE.test(lines[i]!)) continue;
    let url = URL_PREFIX.exec(lines[i]!.slice(at))![0];
    // Wrapped: the next lines hold nothing but URL characters and continue it.
    for (let j = i + 1; j < lines.length; j++) {
      const next = lines[j]!.trim();
      if (next === '' || !URL_CHARS.test(next) || !continues(lines[j - 1]!, url, next, width)) break;
      url += next;
    }
    const origin = originOf(url);
    if (origin !== null && origins.includes(origin)) return url;
  }
  return null;
}

/**
 * The next line continues the URL the terminal broke: the line before ends with the URL so far, and the next one
 * holds URL punctuation (a query's `&`, `=`, `%`, `.`) or the break came at the wrap width (a long line).
 */
function continues(line: string, url: string, next: string, width: number): boolean {
  const trimmed = line.trimEnd();
  const last = trimmed.slice(trimmed.lastIndexOf(' ') + 1);
  if (!url.endsWith(last)) return false;
  return /[&=%./?_-]/.test(next) || (width >= 40 && trimmed.length >= width);
}

function originOf(url: string): string | null {
  try {
    const u = new URL(url);
    return u.protocol === 'https:' && u.username === '' && u.password === '' ? u.origin : null;
  } catch {
    return null;
  }
}

/** A device code as Codex prints it: groups of capitals and digits joined by a dash (`ABCD-12345`). */
const USER_CODE = /(?:^|\s)([A-Z0-9]{4,8}-[A-Z0-9]{4,8})(?=\s|$)/;

/** The one-time code printed after the words "one-time code" (Codex's device-code login), or null. */
export function findUserCode(text: string): string | null {
  const at = text.search(/one-time code/i);
  if (at < 0) return null;
  return USER_CODE.exec(text.slice(at))?.[1] ?? null;
}

/**
 * The first line of the output that reports an error, with the lines that continue it (a TUI wraps a long
 * message; a blank line ends it), spaces squeezed, at most 500 characters; null if none.
 */
export function findError(text: string): string | null {
  const lines = text.split('\n').map((l) => l.replace(BORDER, '').replace(/\s+/g, ' ').trim());
  const first = lines.findIndex((l) => ERROR_LINE.test(l) && !WARNING.test(l));
  if (first < 0) return null;
  const said = [lines[first]!];
  for (let i = first + 1; i < lines.length && i <= first + 2 && lines[i] !== '' && !ERROR_LINE.test(lines[i]!); i++) {
    said.push(lines[i]!);
  }
  return said.join(' ').slice(0, 500);
}

/** Everything the output says so far, for a provider's headless login. */
export function readHeadlessOutput(spec: HeadlessLoginSpec, output: string): HeadlessReading {
  const text = plainText(output);
  return {
    url: findAuthorizeUrl(text, spec.urlOrigins),
    userCode: spec.kind === 'device_code' ? findUserCode(text) : null,
    error: findError(text),
  };
}

/** The output with every occurrence of the secrets replaced (a pasted code echoes on the terminal). */
export function scrubSecrets(text: string, secrets: readonly string[]): string {
  let out = text;
  for (const s of secrets) if (s !== '') out = out.split(s).join('[redacted]');
  return out;
}
