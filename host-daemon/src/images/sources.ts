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
