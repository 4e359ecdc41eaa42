import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FiredeckError } from '../../src/shared/errors';
import { defaultConfig } from './config';
import {
  applyConfigFile,
  describeSettings,
  parseConfigFile,
  renderDefaultConfigFile,
  SETTINGS,
  type FileValue,
} from './configFile';
import { defaultCacheDir } from './images/builder';

let dir: string;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'firedeck-conf-'));
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

function write(text: string): string {
  const file = path.join(dir, 'firedeckd.conf');
  fs.writeFileSync(file, text);
  return file;
}

function parseError(text: string): FiredeckError {
  try {
    parseConfigFile(text, '/etc/firedeck/firedeckd.conf');
  } catch (err) {
    if (err instanceof FiredeckError) return err;
    throw err;
  }
  throw new Error('expected the file to be refused');
}

/** The documented file with every `#key = value` line uncommented. */
function uncommented(): string {
  return renderDefaultConfigFile()
    .split('\n')
    .map((l) => (/^#[a-z-]+ = .+$/.test(l) ? l.slice(1) : l))
    .join('\n');
}

describe('the documented default config file', () => {
  it('parses to no settings as shipped (every line commented out)', () => {
    expect(parseConfigFile(renderDefaultConfigFile(), 'f').size).toBe(0);
  });

  it('documents every setting with its variable and flag, and its defaults are what the readers use', () => {
    const text = renderDefaultConfigFile();
    for (const s of SETTINGS) {
      expect(text).toContain(s.defaultValue === null ? `#${s.key} =\n` : `#${s.key} = ${s.defaultValue}\n`);
      expect(text).toContain(s.env);
      if (s.flag) expect(text).toContain(s.flag);
    }
    const values = parseConfigFile(uncommented(), 'f');
    expect([...values.keys()].sort()).toEqual(
      SETTINGS.filter((s) => s.defaultValue !== null)
        .map((s) => s.key)
        .sort(),
    );
    // Applied with an empty environment, the uncommented defaults change nothing the daemon reads.
    const env: NodeJS.ProcessEnv = {};
    applyConfigFile(['--config', write(uncommented())], env);
    expect(defaultConfig(env)).toEqual(defaultConfig({}));
    const saved = process.env.FIREDECK_CACHE_DIR;
    delete process.env.FIREDECK_CACHE_DIR;
    try {
      expect(env.FIREDECK_CACHE_DIR).toBe(defaultCacheDir());
    } finally {
      if (saved !== undefined) process.env.FIREDECK_CACHE_DIR = saved;
    }
  });

  it('knows every FIREDECK_* variable the daemon reads', () => {
    const here = path.dirname(fileURLToPath(import.meta.url));
    const sources = fs
      .readdirSync(here, { recursive: true, encoding: 'utf8' })
      .filter((f) => f.endsWith('.ts') && !f.endsWith('.test.ts'))
      .map((f) => fs.readFileSync(path.join(here, f), 'utf8'))
      .join('\n');
    const read = new Set(
      [...sources.matchAll(/\benv\.(FIREDECK_[A-Z_]+)|process\.env\.(FIREDECK_[A-Z_]+)/g)].map((m) => m[1] ?? m[2]),
    );
    // The config file's own location is not a setting.
    read.delete('FIREDECK_CONFIG');
    expect([...read].filter((v) => !SETTINGS.some((s) => s.env === v))).toEqual([]);
  });
});

describe('parseConfigFile', () => {
  it('reads key = value lines with comments and blank lines', () => {
    const values = parseConfigFile(
      '# a comment\n\nbridge = fdp1br0   # trailing comment\n  cidr=10.213.76.0/24\ndriver = qemu\n',
      'f',
    );
    expect(Object.fromEntries(values)).toEqual<Record<string, FileValue>>({
      bridge: { value: 'fdp1br0', line: 3 },
      cidr: { value: '10.213.76.0/24', line: 4 },
      driver: { value: 'qemu', line: 5 },
    });
  });

  it('refuses an unknown key naming the file, the line and the key, with the nearest known key', () => {
    const e = parseError('bridge = x\nbrige = fdbr1\n');
    expect(e.kind).toBe('invalid_params');
    expect(e.message).toMatch(/^\/etc\/firedeck\/firedeckd\.conf:2: unknown key "brige" \(did you mean bridge\?\)/);
    expect(e.hint).toContain('firedeckd config default');
    expect(e.details).toMatchObject({ file: '/etc/firedeck/firedeckd.conf' });
  });

  it('reports every problem at once: bad values, repeats, empty values and lines without =', () => {
    const e = parseError(
      [
        'cidr = 10.0.0.0/33',
        'qemu-accel = fast',
        'stop-timeout-seconds = -1',
        'state-dir = var/lib/firedeck',
        'bridge = a-bridge-name-too-long',
        'driver = qemu',
        'driver = firecracker',
        'group =',
        'just words',
      ].join('\n'),
    );
    const problems = (e.details as { problems: string[] }).problems;
    expect(problems.map((p) => /:(\d+): (\S+)/.exec(p)?.slice(1, 3).join(' '))).toEqual([
      '1 cidr:',
      '2 qemu-accel:',
      '3 stop-timeout-seconds:',
      '4 state-dir:',
      '5 bridge:',
      '7 driver',
      '8 group',
      '9 expected',
    ]);
    expect(problems[1]).toContain('must be one of auto, kvm, tcg (got "fast")');
    expect(problems[5]).toContain('set twice (first on line 6)');
    expect(e.message).toContain('has 8 errors');
  });
});

describe('applyConfigFile', () => {
  it('fills in what the environment leaves unset: environment > file > defaults', () => {
    const file = write('bridge = filebr0\ncidr = 10.213.77.0/24\nrun-dir = /srv/firedeck/run\n');
    const env: NodeJS.ProcessEnv = { FIREDECK_BRIDGE: 'envbr0' };
    const layer = applyConfigFile(['--config', file, 'serve'], env);
    expect(layer.argv).toEqual(['serve']);
    const config = defaultConfig(env);
    expect(config.bridge).toBe('envbr0');
    expect(config.cidr).toBe('10.213.77.0/24');
    // The socket follows a run dir moved by the file, as it follows --run-dir.
    expect(config.socketPath).toBe('/srv/firedeck/run/firedeckd.sock');
    expect(describeSettings(layer, env).filter((r) => ['bridge', 'cidr', 'socket', 'group'].includes(r.key))).toEqual([
      { key: 'socket', value: '/srv/firedeck/run/firedeckd.sock', source: 'default (in run-dir)' },
      { key: 'group', value: 'firedeck', source: 'default' },
      { key: 'bridge', value: 'envbr0', source: 'FIREDECK_BRIDGE' },
      { key: 'cidr', value: '10.213.77.0/24', source: `${file}:2` },
    ]);
  });

  it('takes --config=PATH or FIREDECK_CONFIG, and leaves what follows -- alone', () => {
    const file = write('group = fdp\n');
    const env: NodeJS.ProcessEnv = {};
    expect(applyConfigFile(['shell', `--config=${file}`, 'vm1', '--', '--config', 'x'], env).argv).toEqual([
      'shell',
      'vm1',
      '--',
      '--config',
      'x',
    ]);
    expect(env.FIREDECK_GROUP).toBe('fdp');
    const env2: NodeJS.ProcessEnv = { FIREDECK_CONFIG: file };
    applyConfigFile(['version'], env2);
    expect(env2.FIREDECK_GROUP).toBe('fdp');
  });

  it('uses the defaults without a default file, but refuses a named file that is missing', () => {
    const missing = path.join(dir, 'nope.conf');
    expect(applyConfigFile(['serve'], {}, missing)).toMatchObject({ file: null, argv: ['serve'] });
    expect(() => applyConfigFile(['--config', missing], {})).toThrow(/cannot read the config file .*nope\.conf/);
    expect(() => applyConfigFile(['--config'], {})).toThrow(/--config needs/);
  });

  it('refuses a bad file before anything reads it', () => {
    const file = write('bridge = ok0\nqemu-accel = fast\n');
    const env: NodeJS.ProcessEnv = {};
    expect(() => applyConfigFile(['--config', file], env)).toThrow(
      `${file}:2: qemu-accel: must be one of auto, kvm, tcg`,
    );
    expect(env.FIREDECK_BRIDGE).toBeUndefined();
  });
});
