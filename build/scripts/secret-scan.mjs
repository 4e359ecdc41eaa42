#!/usr/bin/env node
// Secret scan of the repo's git-tracked files (and, through scanTree, of a built image's root filesystem):
//   - private keys: PEM / OpenSSH / PGP private key blocks (a line that is the BEGIN marker, or the marker
//     followed by an escaped newline and key text inside a string);
//   - key patterns of AWS, GitHub, OpenAI, Anthropic, Google and Slack;
//   - URLs with a user and password in them (proxy credentials among them);
//   - constant passwords (`password: '<literal>'`, `PASSWORD=<literal>`, `chpasswd` with a literal), in test code
//     too: tests draw passwords at random;
//   - high-entropy values assigned to names like token, secret, password, key.
// A line that is an intentional negative case says so: `secret-scan: allow <why>` in a comment on it or on the
// line above. What is printed is redacted: a finding shows where it is and what rule it broke, not the secret.
// Usage: node build/scripts/secret-scan.mjs [--tree DIR]
//   without --tree: the repo's tracked files; exit 0 when clean, 1 with findings.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

/** Files larger than this are not read (lockfiles and bundles stay well below). */
export const MAX_FILE_BYTES = 8 * 1024 * 1024;

const PRIVATE_KEY_MARKER = /-----BEGIN ((?:[A-Z0-9]+ )*)PRIVATE KEY(?: BLOCK)?-----/;
// Built from parts so that this line is not a marker itself.
const ALLOW = new RegExp(['secret-scan', ' allow\\b(.*)$'].join(':'));

/**
 * Shannon entropy of a string in bits per character.
 * @param {string} s
 */
export function entropy(s) {
  if (s.length === 0) return 0;
  /** @type {Map<string, number>} */
  const counts = new Map();
  for (const c of s) counts.set(c, (counts.get(c) ?? 0) + 1);
  let bits = 0;
  for (const n of counts.values()) {
    const p = n / s.length;
    bits -= p * Math.log2(p);
  }
  return bits;
}

/**
 * Whether a value looks like a random token rather than a word, a path or a placeholder.
 * @param {string} value
 */
export function looksRandom(value) {
  if (value.length < 20 || /[\s${}<>]/.test(value)) return false;
  if (/^[a-z]+(?:[-_.][a-z]+)*$/i.test(value)) return false; // words and dotted names
  if (/^(?:\.{0,2}\/|[a-z]+:\/\/)/i.test(value)) return false; // paths and URLs
  const digits = (value.match(/[0-9]/g) ?? []).length;
  const letters = (value.match(/[a-z]/gi) ?? []).length;
  // Short samples of random text measure well below their alphabet's entropy (32 random hex digits: about 3.6
  // bits a character, rarely under 3); words with digits in them stay out through the checks above.
  const threshold = /^[0-9a-f]+$/i.test(value) ? 2.5 : 3;
  return digits >= 2 && letters >= 4 && entropy(value) >= threshold;
}

/** A password literal that is plainly not one: empty, a placeholder, a redaction mark or an env reference. */
function isPlaceholder(value) {
  return (
    value.trim() === '' ||
    /^(?:<[^>]*>|\$\{[^}]*\}|\$[A-Za-z0-9_@*#?]+|\$\(.*\)|%[sd]|\*+|x+|\.\.\.|…|redacted|\[redacted\])$/i.test(
      value.trim(),
    )
  );
}

/**
 * The rules, each a function from a line to the secrets it finds there (start and end in the line).
 * @type {readonly { id: string, what: string, find: (line: string) => { start: number, end: number }[] }[]}
 */
export const RULES = [
  {
    id: 'private-key',
    what: 'a private key block',
    find(line) {
      const m = PRIVATE_KEY_MARKER.exec(line);
      if (!m) return [];
      const after = line.slice(m.index + m[0].length);
      const ownLine = /^\s*$/.test(line.slice(0, m.index)) && /^\s*$/.test(after);
      const inString =
        /^(?:\\r)?\\n[A-Za-z0-9+/=]{40}/.test(after) || /^(?:\\r)?\\n(?:[A-Za-z-]+: [^\\]*\\n)+/.test(after);
      return ownLine || inString ? [{ start: m.index, end: line.length }] : [];
    },
  },
  regexRule('aws-access-key', 'an AWS access key id', /\b(?:AKIA|ASIA|ABIA|ACCA)[0-9A-Z]{16}\b/g),
  regexRule(
    'aws-secret-key',
    'an AWS secret access key',
    /aws_?secret_?(?:access_?)?key['"]?\s*[:=]\s*['"]?([A-Za-z0-9/+=]{40})(?![A-Za-z0-9/+=])/gi,
    1,
  ),
  regexRule('github-token', 'a GitHub token', /\b(?:gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{22,})\b/g),
  regexRule('anthropic-key', 'an Anthropic API key or OAuth token', /\bsk-ant-[a-z]{2,6}\d{2}-[A-Za-z0-9_-]{20,}/g),
  regexRule(
    'openai-key',
    'an OpenAI API key',
    /\bsk-(?!ant-)(?:proj-|svcacct-|admin-)?[A-Za-z0-9_-]{20,}(?![A-Za-z0-9_-])/g,
    0,
    (s) => looksRandom(s.replace(/^sk-(?:proj-|svcacct-|admin-)?/, '')),
  ),
  regexRule(
    'google-key',
    'a Google API key, OAuth client secret or access token',
    /\b(?:AIza[0-9A-Za-z_-]{35}|GOCSPX-[A-Za-z0-9_-]{28}|ya29\.[A-Za-z0-9_-]{20,})(?![A-Za-z0-9_-])/g,
  ),
  regexRule('slack-token', 'a Slack token', /\bxox[abposr]-[A-Za-z0-9-]{10,}/g),
  regexRule(
    'url-credentials',
    'a URL with a user and password (e.g. proxy credentials)',
    /\b[a-z][a-z0-9+.-]*:\/\/([^\s:@/'"`<>]+):([^\s@/'"`<>]+)@[^\s'"`<>]+/gi,
    0,
    (_s, m) =>
      !isPlaceholder(m[2] ?? '') &&
      !/^(?:pass|password|passwd|secret)$/i.test(m[2] ?? '') && // user:pass@host in a usage hint
      !(m[2] ?? '').includes('${') &&
      !(m[1] ?? '').includes('${'),
  ),
  regexRule(
    'constant-password',
    'a constant password',
    // a name, quoted only when it is a quoted key ('VNC password' : 'x' is a string, not an assignment)
    // (PWD is the working directory; `? "password" : "text"` is a conditional, not an object key)
    /(?<!\?\s*)(['"]?)\b[a-z_]*pass(?:word|wd|phrase)\1\s*[:=]\s*(['"`])((?:(?!\2).)*)\2/gi,
    3,
    (value) => !isPlaceholder(value) && !value.includes('${'),
  ),
  regexRule(
    'constant-password',
    'a constant password',
    /^\s*(?:export\s+)?[A-Z_]*PASS(?:WORD|WD)\s*=\s*(?!["']?\$)["']?([^\s"'#;]+)/g,
    1,
    (value) => !isPlaceholder(value),
  ),
  regexRule(
    'constant-password',
    'a constant password (chpasswd)',
    /\b(?:echo|printf)\s+(['"])[a-z_][a-z0-9_-]*:((?:(?!\1)[^$])+)\1\s*\|\s*(?:sudo\s+)?chpasswd/g,
    2,
  ),
  regexRule(
    'assigned-secret',
    'a high-entropy value assigned to a secret-sounding name',
    /\b[A-Za-z0-9_$.-]*(?:token|secret|passw(?:or)?d|passphrase|api_?key|apikey|access_?key|private_?key|secret_?key|client_?secret|credential|auth)[A-Za-z0-9_]*['"]?\s*[:=]\s*(['"`])([^'"`\s]{20,})\1/gi,
    2,
    (value) => looksRandom(value),
  ),
];

/**
 * @param {string} id
 * @param {string} what
 * @param {RegExp} re global
 * @param {number} [group] the group that holds the secret (0: the whole match)
 * @param {(secret: string, m: RegExpExecArray) => boolean} [keep]
 */
function regexRule(id, what, re, group = 0, keep = () => true) {
  return {
    id,
    what,
    /** @param {string} line */
    find(line) {
      const out = [];
      re.lastIndex = 0;
      for (let m = re.exec(line); m !== null; m = re.exec(line)) {
        const secret = m[group];
        if (secret === undefined || secret === '' || !keep(secret, m)) continue;
        const start = m.index + m[0].lastIndexOf(secret);
        out.push({ start, end: start + secret.length });
        if (m[0].length === 0) re.lastIndex++;
      }
      return out;
    },
  };
}

/**
 * A line with the secret replaced by its first characters and its length, short enough to print.
 * @param {string} line
 * @param {{ start: number, end: number }} span
 */
export function redact(line, span) {
  const secret = line.slice(span.start, span.end);
  const shown = secret.length > 12 ? secret.slice(0, 4) : '';
  const masked = `${line.slice(0, span.start)}${shown}…[${secret.length} chars]${line.slice(span.end)}`;
  const from = Math.max(0, span.start - 60);
  return (from > 0 ? '…' : '') + masked.slice(from, from + 160).trim();
}

/**
 * Scans one text. A finding on a line that (or whose line above) carries `secret-scan: allow <why>` is left
 * out; an allow marker without a reason is a finding itself.
 * @param {string} text
 * @param {string} file the name to report
 * @returns {import('./secret-scan.d.mts').SecretFinding[]}
 */
export function scanText(text, file) {
  const lines = text.split(/\r?\n/);
  /** @type {import('./secret-scan.d.mts').SecretFinding[]} */
  const findings = [];
  lines.forEach((line, i) => {
    if (line.length > 20_000) return; // minified bundles: a line this long is data, not a place for a password
    const above = lines[i - 1] ?? '';
    const marker = ALLOW.exec(line) ?? (/^\s*(?:\/\/|#|\/?\*)/.test(above) ? ALLOW.exec(above) : null);
    if (marker && /[A-Za-z]{3,}/.test(marker[1] ?? '')) return;
    if (marker) {
      findings.push({
        rule: 'allow-without-reason',
        what: 'a secret-scan allow marker without a reason',
        file,
        line: i + 1,
        excerpt: line.trim().slice(0, 160),
      });
    }
    for (const rule of RULES) {
      for (const span of rule.find(line)) {
        findings.push({ rule: rule.id, what: rule.what, file, line: i + 1, excerpt: redact(line, span) });
      }
    }
  });
  return findings;
}

/**
 * Reads a file for scanning: its text, or null when it is binary (a NUL byte in its first 8 KiB) or too big.
 * @param {string} file
 */
function readText(file) {
  const st = fs.lstatSync(file);
  if (!st.isFile() || st.size > MAX_FILE_BYTES) return null;
  const buf = fs.readFileSync(file);
  if (buf.subarray(0, 8192).includes(0)) return null;
  return buf.toString('utf8');
}

/**
 * Scans the git-tracked files of a repository (those present in the work tree).
 * @param {string} repoRoot
 * @returns {import('./secret-scan.d.mts').SecretFinding[]}
 */
export function scanRepo(repoRoot) {
  const listed = execFileSync('git', ['-C', repoRoot, 'ls-files', '-z'], { encoding: 'utf8', maxBuffer: 64 << 20 });
  const findings = [];
  for (const rel of listed.split('\0').filter(Boolean)) {
    const text = fs.existsSync(path.join(repoRoot, rel)) ? readText(path.join(repoRoot, rel)) : null;
    if (text !== null) findings.push(...scanText(text, rel));
  }
  return findings;
}

/** Where in an image's root filesystem files are read (the rest is the distribution's own packages). */
export const IMAGE_ROOTS = ['etc', 'root', 'home', 'opt', 'srv', 'usr/local', 'var/lib', 'var/spool', 'tmp', 'var/tmp'];
/** Files (by name) that are secrets whatever they hold, in an image. */
const KEY_FILE_NAMES = /^(?:id_(?:rsa|dsa|ecdsa|ed25519)(?:_sk)?|ssh_host_.*_key|\.git-credentials|\.netrc|\.pgpass)$/;

/**
 * Scans a directory tree, e.g. a built image's root filesystem mounted or unpacked at `dir`. Symbolic links are
 * not followed and special files are skipped. Beyond the text rules it reports key files by name (SSH host and
 * user keys, .git-credentials, .netrc) and accounts in etc/shadow that have a usable password hash. Constant
 * passwords are not reported inside node_modules (third-party code's defaults and examples).
 * @param {string} dir
 * @param {{ roots?: readonly string[], maxFileBytes?: number }} [options] roots: subdirectories to walk
 *   (default IMAGE_ROOTS; `['.']` for all of it)
 * @returns {import('./secret-scan.d.mts').SecretFinding[]}
 */
export function scanTree(dir, options = {}) {
  const base = path.resolve(dir);
  const roots = options.roots ?? IMAGE_ROOTS;
  const findings = [];
  const seen = new Set();
  const visit = (abs) => {
    let st;
    try {
      st = fs.lstatSync(abs);
    } catch {
      return;
    }
    const key = `${st.dev}:${st.ino}`;
    if (seen.has(key)) return;
    seen.add(key);
    const rel = path.relative(base, abs).split(path.sep).join('/');
    if (st.isDirectory()) {
      if (['proc', 'sys', 'dev', 'run'].includes(rel)) return;
      let names = [];
      try {
        names = fs.readdirSync(abs);
      } catch {
        return;
      }
      for (const name of names.sort()) visit(path.join(abs, name));
      return;
    }
    if (!st.isFile()) return;
    if (KEY_FILE_NAMES.test(path.basename(abs)) && st.size > 0) {
      findings.push({
        rule: 'key-file',
        what: 'a key or credentials file',
        file: rel,
        line: 0,
        excerpt: `${st.size} bytes`,
      });
    }
    if (st.size > (options.maxFileBytes ?? MAX_FILE_BYTES)) return;
    let text;
    try {
      text = readText(abs);
    } catch {
      return;
    }
    if (text === null) return;
    if (rel === 'etc/shadow') findings.push(...shadowFindings(text, rel));
    const thirdParty = rel.includes('/node_modules/');
    // Third-party packages' defaults and docs (an FTP client's anonymous password) are not this image's
    // passwords; keys, tokens and credentials in URLs count wherever they are.
    findings.push(...scanText(text, rel).filter((f) => !(thirdParty && f.rule === 'constant-password')));
  };
  for (const r of roots) visit(path.join(base, r));
  return findings;
}

/**
 * Accounts in a shadow file whose password field is a hash (not empty, `*`, `!`-locked or `x`).
 * @param {string} text
 * @param {string} file
 */
export function shadowFindings(text, file) {
  return text
    .split('\n')
    .map((line, i) => ({ fields: line.split(':'), line: i + 1 }))
    .filter(({ fields }) => fields.length >= 2 && /^\$[0-9a-z]+\$/.test(fields[1] ?? ''))
    .map(({ fields, line }) => ({
      rule: 'shadow-password',
      what: 'an account with a password set',
      file,
      line,
      excerpt: `${fields[0]}:${(fields[1] ?? '').split('$').slice(0, 2).join('$')}$…`,
    }));
}

/** @param {readonly import('./secret-scan.d.mts').SecretFinding[]} findings */
export function formatFindings(findings) {
  return findings.map((f) => `${f.file}:${f.line}: ${f.rule} (${f.what})\n    ${f.excerpt}`).join('\n');
}

function main() {
  const { values } = parseArgs({ options: { tree: { type: 'string' } } });
  const findings = values.tree ? scanTree(values.tree) : scanRepo(root);
  if (findings.length === 0) {
    process.stdout.write(`secret-scan: ok (${values.tree ? values.tree : 'tracked files'})\n`);
    return 0;
  }
  process.stdout.write(`${formatFindings(findings)}\n`);
  process.stdout.write(
    `secret-scan: ${findings.length} finding(s). Remove the secret (tests draw theirs at random), or mark an` +
      ' intentional negative case with `secret-scan: allow <why>` in a comment on the line.\n',
  );
  return 1;
}

if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  process.exit(main());
}
