import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { FiredeckError } from '../../../src/shared/errors';

/**
 * Where packages come from, read from the machine's own configuration at run time: the repository never names
 * an archive or registry host.
 */
export function debianArchiveUri(etcApt = '/etc/apt'): string {
  const candidates: string[] = [];
  const dir = path.join(etcApt, 'sources.list.d');
  let entries: string[] = [];
  try {
    entries = fs.readdirSync(dir).sort();
  } catch {
    // No sources.list.d: fall through to sources.list.
  }
  for (const name of entries.filter((n) => n.endsWith('.sources'))) {
    const text = fs.readFileSync(path.join(dir, name), 'utf8');
    for (const stanza of text.split(/\n\s*\n/)) {
      if (!/^Types:.*\bdeb\b/m.test(stanza)) continue;
      const suites = /^Suites:\s*(.+)$/m.exec(stanza)?.[1] ?? '';
      // The security archive has its own layout; the base system comes from the main archive.
      if (/-security\b/.test(suites)) continue;
      const uris = /^URIs:\s*(.+)$/m.exec(stanza)?.[1];
      if (uris) candidates.push(...uris.trim().split(/\s+/));
    }
  }
  for (const file of [
    path.join(etcApt, 'sources.list'),
    ...entries.filter((n) => n.endsWith('.list')).map((n) => path.join(dir, n)),
  ]) {
    let text = '';
    try {
      text = fs.readFileSync(file, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n')) {
      const m = /^\s*deb\s+(?:\[[^\]]*\]\s+)?(\S+)\s+(\S+)/.exec(line);
      if (m && !/-security\b/.test(m[2]!)) candidates.push(m[1]!);
    }
  }
  const uri = candidates.find((u) => /^(https?|file):/.test(u));
  if (!uri) {
    throw new FiredeckError(
      'unavailable',
      'no Debian archive is configured in apt (URIs: in /etc/apt/sources.list.d/*.sources)',
      {
        hint: 'configure apt with a Debian mirror; image builds use the same archive',
      },
    );
  }
  return uri;
}

/** The npm registry this machine's npm uses (`npm config get registry`). */
export function npmRegistry(): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile('npm', ['config', 'get', 'registry'], { timeout: 30_000 }, (err, stdout) => {
      const url = stdout.trim();
      if (err || !/^https?:\/\//.test(url)) {
        reject(
          new FiredeckError(
            'unavailable',
            `cannot read the npm registry from npm's config: ${err ? err.message : url}`,
            {
              hint: 'install npm on the host and configure its registry',
            },
          ),
        );
        return;
      }
      resolve(url);
    });
  });
}

/** Settings of the machine's npm that the image build's npm step carries over (how to reach the registry). */
const CARRIED_NPM_SETTINGS = ['cafile', 'proxy', 'https-proxy', 'noproxy', 'strict-ssl', 'nodedir'] as const;
/** Environment variables that shape how Node reaches the network, carried over the same way. */
const CARRIED_ENV = [
  'NODE_EXTRA_CA_CERTS',
  'HTTP_PROXY',
  'HTTPS_PROXY',
  'NO_PROXY',
  'http_proxy',
  'https_proxy',
  'no_proxy',
];

/**
 * The registry and how to reach it, for an npm that runs without the machine's user config (the image build's
 * npm step runs as a throw-away user): registry, CA file, proxies and nodedir as `npm_config_*` variables, never
 * credentials (those would be readable by the packages' install scripts).
 */
export async function npmClientConfig(): Promise<{ registry: string; env: Record<string, string> }> {
  const registry = await npmRegistry();
  const text = await new Promise<string>((resolve) => {
    execFile('npm', ['config', 'get', ...CARRIED_NPM_SETTINGS], { timeout: 30_000 }, (err, stdout) =>
      resolve(err ? '' : stdout),
    );
  });
  const env: Record<string, string> = { npm_config_registry: registry };
  for (const line of text.split('\n')) {
    const m = /^([a-z-]+)=(.*)$/.exec(line.trim());
    if (!m || !(CARRIED_NPM_SETTINGS as readonly string[]).includes(m[1]!)) continue;
    const value = m[2]!.trim();
    if (value === '' || value === 'null' || value === 'undefined') continue;
    env[`npm_config_${m[1]!.replace(/-/g, '_')}`] = value;
  }
  for (const name of CARRIED_ENV) {
    const value = process.env[name];
    if (value) env[name] = value;
  }
  return { registry, env };
}
