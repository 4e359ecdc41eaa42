import { execFileSync, spawnSync } from 'node:child_process';
import { generateKeyPairSync, randomBytes, randomInt } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { entropy, looksRandom, scanRepo, scanText, scanTree, shadowFindings } from './scripts/secret-scan.mjs';

// Every secret here is drawn at run time: this file is scanned with the rest of the repo.
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const ALNUM = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
const UPPER_DIGITS = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
const draw = (n: number, alphabet = ALNUM): string =>
  Array.from({ length: n }, () => alphabet[randomInt(alphabet.length)]).join('');
const marker = (kind: string): string => ['-----BEGIN', `${kind}PRIVATE KEY-----`].join(' ');

const rules = (text: string): string[] => scanText(text, 'sample.ts').map((f) => f.rule);

const dirs: string[] = [];
function tempDir(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'secret-scan-'));
  dirs.push(dir);
  return dir;
}
afterEach(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

describe('the secret scan', () => {
  it('finds private key blocks, on their own line or inside a string, and not code naming the marker', () => {
    const { privateKey } = generateKeyPairSync('ed25519');
    const pem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
    expect(rules(pem)).toEqual(['private-key']);
    const body = randomBytes(60).toString('base64');
    expect(rules(`${marker('OPENSSH ')}\n${body}\n`)).toEqual(['private-key']);
    expect(rules(`const key = "${marker('RSA ')}\\n${body}\\n";`)).toEqual(['private-key']);
    expect(rules(`  ${marker('EC ')}  `)).toEqual(['private-key']);
    expect(rules(`if (line.startsWith('${marker('')}')) return true;`)).toEqual([]);
    expect(rules(`const re = /^${marker('(?:[A-Z]+ )*')}$/;`)).toEqual([]);
  });

  it('finds AWS, GitHub, Anthropic, OpenAI, Google and Slack keys', () => {
    expect(rules(`const id = 'AKIA${draw(16, UPPER_DIGITS)}';`)).toEqual(['aws-access-key']);
    expect(rules(`aws_secret_access_key = ${randomBytes(30).toString('base64')}`)).toEqual(['aws-secret-key']);
    expect(rules(`GH=ghp_${draw(36)}`)).toEqual(['github-token']);
    expect(rules(`x = "github_pat_${draw(22)}_${draw(59)}"`)).toEqual(['github-token']);
    expect(rules(`key sk-ant-api03-${randomBytes(60).toString('base64url')}`)).toEqual(['anthropic-key']);
    expect(rules(`OPENAI sk-proj-${draw(48)}12`)).toEqual(['openai-key']);
    expect(rules(`google: AIza${draw(35)}`)).toEqual(['google-key']);
    expect(rules(`secret GOCSPX-${draw(28)}`)).toEqual(['google-key']);
    expect(rules(`slack xoxb-${draw(12, '0123456789')}-${draw(24)}`)).toEqual(['slack-token']);
    // prose and identifiers that merely look alike
    expect(rules('sk-learn is a library; the task-runner and AKIAfoo are not keys')).toEqual([]);
  });

  it('finds URLs with credentials, not usage hints or URLs built from variables', () => {
    const pw = draw(12);
    const line = (s: string): string[] => rules(s);
    expect(line(`HTTPS_PROXY=http://bob:${pw}@proxy.internal:3128`)).toEqual(['url-credentials']);
    expect(line(`socks5h://svc:${pw}@10.0.0.1:1080`)).toEqual(['url-credentials']);
    expect(line('const url = `http://${user}:${pass}@${host}`;')).toEqual([]);
    expect(line("hint: 'Use http://user:pass@host:port'")).toEqual([]);
    expect(line('https://example.org/path?x=1')).toEqual([]);
  });

  it('finds constant passwords in code, JSON, shell and chpasswd, and not variables or placeholders', () => {
    const pw = draw(10);
    // Built by concatenation so that this line is not itself a constant password.
    const q = (s: string): string => `'${s}'`;
    expect(rules(`const opts = { password: ${q(pw)} };`)).toEqual(['constant-password']);
    expect(rules(`{ "vncPassword": "${pw}" }`)).toEqual(['constant-password']);
    expect(rules(`db_passwd = ${q(pw)}`)).toEqual(['constant-password']);
    expect(rules(`export ADMIN_PASSWORD=${pw}`)).toEqual(['constant-password']);
    expect(rules(`echo ${q(`root:${pw}`)} | chpasswd`)).toEqual(['constant-password']);
    expect(rules('const opts = { password };')).toEqual([]);
    expect(rules('password: process.env.FIREDECK_PASSWORD,')).toEqual([]);
    expect(rules("password: '',")).toEqual([]);
    expect(rules("password: '<password>',")).toEqual([]);
    expect(rules('export PASSWORD="$1"')).toEqual([]);
    expect(rules("label: chosen ? 'VNC password' : 'no auth'")).toEqual([]);
    expect(rules('password: string;')).toEqual([]);
    expect(rules("type: sensitive ? 'password' : 'text',")).toEqual([]);
    expect(rules('env = { PWD: "/", HOME: "/home/u" }')).toEqual([]);
  });

  it('finds high-entropy values under secret-sounding names, not words or paths', () => {
    const hex = randomBytes(16).toString('hex');
    expect(rules(`const agentToken = '${hex}';`)).toEqual(['assigned-secret']);
    expect(rules(`clientSecret: "${randomBytes(24).toString('base64url')}x1",`)).toEqual(['assigned-secret']);
    expect(rules("const sessionToken = 'firedeck-session-token-name';")).toEqual([]);
    expect(rules("tokenFile: '/var/lib/firedeck/vms/vm-1/secrets.json',")).toEqual([]);
    expect(rules("const token = 't';")).toEqual([]);
    expect(looksRandom(hex)).toBe(true);
    expect(looksRandom('abcdefghijklmnopqrstuvwxyz')).toBe(false);
    expect(entropy('aaaa')).toBe(0);
    expect(entropy('abcd')).toBe(2);
  });

  it('leaves out lines marked as intentional negative cases, and refuses a mark without a reason', () => {
    const hex = randomBytes(16).toString('hex');
    const secret = `const agentToken = '${hex}';`;
    expect(rules(`${secret} // secret-scan: allow the value a refusal test feeds in`)).toEqual([]);
    expect(rules(`// secret-scan: allow the next line is a refused sample\n${secret}`)).toEqual([]);
    expect(rules(`// secret-scan: allow the marker covers one line only\n${secret}\n${secret}`)).toEqual([
      'assigned-secret',
    ]);
    expect(rules(`${secret} // secret-scan: allow`)).toEqual(['allow-without-reason', 'assigned-secret']);
    // a marker inside code above (not a comment line) does not reach down
    expect(rules(`x = 1; // secret-scan: allow an unrelated line\n${secret}`)).toEqual(['assigned-secret']);
  });

  it('shows where a secret is, never the secret', () => {
    const token = `ghp_${draw(36)}`;
    const [finding] = scanText(`line one\nconst t = '${token}';`, 'a/b.ts');
    expect(finding).toMatchObject({ rule: 'github-token', file: 'a/b.ts', line: 2 });
    expect(finding!.excerpt).toContain('[40 chars]');
    expect(finding!.excerpt).not.toContain(token.slice(4));
  });

  it('scans only git-tracked files of a repo', () => {
    const dir = tempDir();
    execFileSync('git', ['init', '-q', dir]);
    const token = `ghp_${draw(36)}`;
    fs.writeFileSync(path.join(dir, 'tracked.ts'), `export const t = '${token}';\n`);
    fs.writeFileSync(path.join(dir, 'untracked.ts'), `export const t = '${token}';\n`);
    fs.writeFileSync(path.join(dir, 'binary.bin'), Buffer.concat([Buffer.alloc(16), Buffer.from(token)]));
    execFileSync('git', ['-C', dir, 'add', 'tracked.ts', 'binary.bin']);
    expect(scanRepo(dir).map((f) => `${f.file}:${f.rule}`)).toEqual(['tracked.ts:github-token']);
  });

  it('passes on this repository as it is', () => {
    const findings = scanRepo(root);
    expect(findings.map((f) => `${f.file}:${f.line} ${f.rule}: ${f.excerpt}`)).toEqual([]);
  });
});

describe('the secret scan of an image tree', () => {
  function imageTree(): { dir: string; hash: string } {
    const dir = tempDir();
    const put = (rel: string, content: string | Buffer): void => {
      fs.mkdirSync(path.dirname(path.join(dir, rel)), { recursive: true });
      fs.writeFileSync(path.join(dir, rel), content);
    };
    const hash = `$6$${draw(8)}$${draw(86)}`;
    put('etc/shadow', `root:*:19000:0:99999:7:::\nfiredeck:!:19000::::::\nadmin:${hash}:19000:0:99999:7:::\n`);
    put('etc/ssh/sshd_config', 'PermitRootLogin no\n');
    put('etc/ssh/ssh_host_ed25519_key', `${marker('OPENSSH ')}\n${randomBytes(60).toString('base64')}\n`);
    put('opt/cli/config.json', JSON.stringify({ apiToken: randomBytes(20).toString('hex') }));
    put('usr/share/doc/pkg/example.pem', `${marker('RSA ')}\n${randomBytes(60).toString('base64')}\n`);
    put('home/firedeck/.profile', 'export PATH=$HOME/bin:$PATH\n');
    // a third-party default password (an FTP client's anonymous login) is not the image's
    put('usr/local/lib/node_modules/ftp/index.js', `login(user = "anonymous", password = "${draw(6)}") {}\n`);
    put('usr/local/lib/node_modules/cli/auth.js', `const apiToken = "${randomBytes(20).toString('hex')}";\n`);
    // a symlink out of the tree is not followed
    const outside = tempDir();
    fs.writeFileSync(path.join(outside, 'key'), `${marker('')}\n${randomBytes(60).toString('base64')}\n`);
    fs.symlinkSync(outside, path.join(dir, 'opt/link'));
    return { dir, hash };
  }

  it('reports key files, accounts with passwords and secrets in text files, where images keep their own', () => {
    const { dir, hash } = imageTree();
    const found = scanTree(dir).map((f) => `${f.file}:${f.rule}`);
    expect(found.sort()).toEqual(
      [
        'etc/shadow:shadow-password',
        'etc/ssh/ssh_host_ed25519_key:key-file',
        'etc/ssh/ssh_host_ed25519_key:private-key',
        'opt/cli/config.json:assigned-secret',
        'usr/local/lib/node_modules/cli/auth.js:assigned-secret',
      ].sort(),
    );
    expect(JSON.stringify(scanTree(dir))).not.toContain(hash.split('$')[3]);
    // the distribution's own files only when asked for
    expect(scanTree(dir, { roots: ['.'] }).map((f) => f.file)).toContain('usr/share/doc/pkg/example.pem');
  });

  it('knows locked, disabled and empty shadow entries from set passwords', () => {
    const text = ['a:*:1::::::', 'b:!:1::::::', 'c:!$6$x$y:1::::::', 'd::1::::::', `e:$y$j9T$${draw(20)}:1::::::`].join(
      '\n',
    );
    expect(shadowFindings(text, 'etc/shadow').map((f) => f.line)).toEqual([5]);
  });

  it('prints findings redacted and exits 1 from the command line', () => {
    const { dir, hash } = imageTree();
    const r = spawnSync(process.execPath, [path.join(root, 'build/scripts/secret-scan.mjs'), '--tree', dir], {
      encoding: 'utf8',
    });
    expect(r.status).toBe(1);
    expect(r.stdout).toContain('etc/shadow:3: shadow-password');
    expect(r.stdout).toContain('secret-scan: 5 finding(s)');
    expect(r.stdout).not.toContain(hash.split('$')[3]);
  });
});
