import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildImage, type BuildProgress } from '../../host-daemon/src/images/builder';
import { NPM_STEP_UID } from '../../host-daemon/src/images/npmStep';
import { recipesRoot } from '../../host-daemon/src/images/recipe';
import { makeTempDir, requireTool } from '../rig/tmp';

const PKG = 'firedeck-script-probe';
const PKG_DIR = `/usr/local/lib/node_modules/${PKG}`;

/** A package tarball whose postinstall records who ran it, what /dev it saw, and tries the host's /tmp. */
function probeTarball(dest: string, hostMarker: string): Buffer {
  const src = makeTempDir('npm-probe');
  try {
    const pkg = path.join(src, 'package');
    fs.mkdirSync(pkg);
    const script = [
      'id -u > ran-as-uid',
      'ls /dev > saw-dev',
      `(echo "$(id -u)" > ${hostMarker}) 2>/dev/null || true`,
    ].join(' && ');
    fs.writeFileSync(
      path.join(pkg, 'package.json'),
      JSON.stringify({ name: PKG, version: '1.0.0', scripts: { postinstall: script } }),
    );
    execFileSync('tar', ['-C', src, '-czf', dest, 'package']);
    return fs.readFileSync(dest);
  } finally {
    fs.rmSync(src, { recursive: true, force: true });
  }
}

function catInImage(rootfs: string, file: string): string {
  return execFileSync('debugfs', ['-R', `cat ${file}`, rootfs], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'ignore'],
  });
}

describe('the npm step of an image build', () => {
  let scratch: string;
  let hostDir: string;

  beforeAll(() => {
    requireTool('/usr/bin/mmdebstrap', 'mmdebstrap');
    requireTool('/usr/sbin/debugfs', 'e2fsprogs');
    scratch = makeTempDir('npm-step');
    // Where a script running on the host as root could write; the sandbox has a /tmp of its own.
    hostDir = makeTempDir('npm-step-host');
    fs.chmodSync(hostDir, 0o777);
  });

  afterAll(() => {
    if (scratch) fs.rmSync(scratch, { recursive: true, force: true });
    if (hostDir) fs.rmSync(hostDir, { recursive: true, force: true });
  });

  it('runs a package’s install script as the throw-away user, without host /dev or /tmp, and records its integrity', async () => {
    // The small test recipe (its base layer is the test image's) with one local npm global and no boot test.
    const dir = path.join(scratch, 'npmprobe');
    fs.cpSync(path.join(recipesRoot(), 'test'), dir, { recursive: true });
    const hostMarker = path.join(hostDir, 'marker');
    const tarball = probeTarball(path.join(dir, 'files', 'probe.tgz'), hostMarker);
    const recipe = JSON.parse(fs.readFileSync(path.join(dir, 'recipe.json'), 'utf8')) as Record<string, unknown>;
    recipe.npmGlobals = ['file:probe.tgz'];
    recipe.checks = [{ name: 'probe installed', run: `cat ${PKG_DIR}/package.json`, expect: PKG }];
    fs.writeFileSync(path.join(dir, 'recipe.json'), JSON.stringify(recipe, null, 2));

    const events: BuildProgress[] = [];
    const t0 = Date.now();
    const built = await buildImage({
      recipeDir: dir,
      outputParent: path.join(scratch, 'out'),
      onProgress: (p) => events.push(p),
      firecrackerKernel: null,
    });
    console.log(`npm probe build: ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    try {
      expect(catInImage(built.rootfsPath, `${PKG_DIR}/ran-as-uid`).trim()).toBe(String(NPM_STEP_UID));
      const dev = catInImage(built.rootfsPath, `${PKG_DIR}/saw-dev`).split('\n').filter(Boolean).sort();
      expect(dev).toEqual([
        'fd',
        'full',
        'null',
        'random',
        'shm',
        'stderr',
        'stdin',
        'stdout',
        'tty',
        'urandom',
        'zero',
      ]);
      expect(fs.existsSync(hostMarker)).toBe(false);
      // What npm installed, in the manifest: the tarball's own sha512 for a local package.
      const integrity = `sha512-${crypto.createHash('sha512').update(tarball).digest('base64')}`;
      expect(built.manifest.npmGlobals).toEqual([{ name: PKG, version: '1.0.0', integrity }]);
      expect(built.manifest.npmDependencies).toEqual([]);
      // The image's files are root's, not the throw-away user's.
      const stat = execFileSync('debugfs', ['-R', `stat ${PKG_DIR}/package.json`, built.rootfsPath], {
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'ignore'],
      });
      expect(stat).toMatch(/User:\s+0\s+Group:\s+0/);
      expect(events.some((e) => e.step === 'npm' && e.line?.includes(`as uid ${NPM_STEP_UID}`))).toBe(true);
    } finally {
      fs.rmSync(built.dir, { recursive: true, force: true });
    }
  }, 600_000);
});
