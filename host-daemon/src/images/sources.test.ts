import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { debianArchiveUri } from './sources';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

function etcApt(files: Record<string, string>): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'firedeck-apt-'));
  dirs.push(dir);
  fs.mkdirSync(path.join(dir, 'sources.list.d'));
  for (const [name, text] of Object.entries(files)) fs.writeFileSync(path.join(dir, name), text);
  return dir;
}

describe('debianArchiveUri', () => {
  it('reads the main archive from deb822 sources, skipping the security suite', () => {
    const dir = etcApt({
      'sources.list.d/debian.sources': [
        'Types: deb',
        'URIs: http://security.example.invalid/debian-security',
        'Suites: bookworm-security',
        'Components: main',
        '',
        'Types: deb',
        'URIs: http://mirror.example.invalid/debian',
        'Suites: bookworm bookworm-updates',
        'Components: main',
      ].join('\n'),
    });
    expect(debianArchiveUri(dir)).toBe('http://mirror.example.invalid/debian');
  });

  it('falls back to a one-line sources.list', () => {
    const dir = etcApt({
      'sources.list': '# comment\ndeb [arch=amd64] http://other.example.invalid/debian bookworm main\n',
    });
    expect(debianArchiveUri(dir)).toBe('http://other.example.invalid/debian');
  });

  it('fails with a hint when nothing is configured', () => {
    expect(() => debianArchiveUri(etcApt({}))).toThrow(/no Debian archive is configured/);
  });

  it('reads this machine (the builder uses it)', () => {
    expect(debianArchiveUri()).toMatch(/^(https?|file):/);
  });
});
