import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const yaml = createRequire(import.meta.url)('js-yaml') as { load: (text: string) => unknown };

/**
 * The release workflow cannot run here (no GitHub runners, no Electron download): it is parsed and held to what
 * it must do, and every script, npm script and file it names must exist in this repository.
 */
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const file = path.join(root, '.github/workflows/release.yml');

interface Step {
  name?: string;
  uses?: string;
  run?: string;
  if?: string;
  with?: Record<string, unknown>;
  env?: Record<string, string>;
}
interface Job {
  'runs-on': string;
  needs?: string[];
  if?: string;
  container?: { image: string; options?: string };
  permissions?: Record<string, string>;
  strategy?: { matrix: { include: Record<string, unknown>[] } };
  env?: Record<string, string>;
  steps: Step[];
}
interface Workflow {
  on: { push: { tags: string[] }; workflow_dispatch: unknown };
  permissions: Record<string, string>;
  env: Record<string, string>;
  jobs: Record<string, Job>;
}

const text = fs.readFileSync(file, 'utf8');
const workflow = yaml.load(text) as Workflow;
const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')) as { scripts: Record<string, string> };

const runs = (job: Job): string => job.steps.map((s) => s.run ?? '').join('\n');
const stepRunning = (job: Job, pattern: RegExp): Step => {
  const step = job.steps.find((s) => pattern.test(s.run ?? ''));
  if (!step) throw new Error(`no step runs ${pattern}`);
  return step;
};

describe('.github/workflows/release.yml', () => {
  it('runs on version tags and by hand, read-only unless publishing', () => {
    expect(workflow.on.push.tags).toEqual(['v*']);
    expect(workflow.on).toHaveProperty('workflow_dispatch');
    expect(workflow.permissions).toEqual({ contents: 'read' });
    expect(workflow.jobs.publish!.permissions).toEqual({ contents: 'write' });
    expect(workflow.jobs.publish!.needs!.sort()).toEqual(['daemon', 'linux', 'mac']);
    expect(workflow.jobs.publish!.if).toBe("startsWith(github.ref, 'refs/tags/v')");
  });

  it('builds macOS x64 and arm64 on a macOS runner, Linux x64 and arm64 on native runners', () => {
    expect(workflow.jobs.mac!['runs-on']).toMatch(/^macos-/);
    expect(stepRunning(workflow.jobs.mac!, /npm run package/).run).toContain('--mac --x64 --arm64');
    const linux = workflow.jobs.linux!;
    expect(linux.strategy!.matrix.include.map((m) => `${String(m.runner)}:${String(m.arch)}`)).toEqual([
      'ubuntu-24.04:x64',
      'ubuntu-24.04-arm:arm64',
    ]);
    expect(stepRunning(linux, /npm run package -- --linux --/).run).toBe(
      'npm run package -- --linux --${{ matrix.arch }} --publish never',
    );
    // Root, TAP devices and a Debian archive for the image pipeline: a privileged Debian container.
    expect(linux.container).toEqual({ image: 'debian:12', options: '--privileged' });
  });

  it('signs and notarizes from secrets only, and requires them for tags', () => {
    const step = stepRunning(workflow.jobs.mac!, /npm run package/);
    expect(step.env).toMatchObject({
      FIREDECK_FUSES: 'release',
      CSC_LINK: '${{ secrets.MAC_CERTIFICATE_P12_BASE64 }}',
      CSC_KEY_PASSWORD: '${{ secrets.MAC_CERTIFICATE_PASSWORD }}',
      APPLE_API_KEY_ID: '${{ secrets.APPLE_API_KEY_ID }}',
      APPLE_API_ISSUER: '${{ secrets.APPLE_API_ISSUER }}',
    });
    expect(workflow.env.FIREDECK_REQUIRE_SIGNING).toBe("${{ startsWith(github.ref, 'refs/tags/v') && '1' || '0' }}");
    expect(runs(workflow.jobs.mac!)).toMatch(/codesign --verify --deep --strict/);
    expect(runs(workflow.jobs.mac!)).toMatch(/spctl --assess/);
    // No credential is written into the file itself.
    expect(text).not.toMatch(/-----BEGIN|AKIA[0-9A-Z]{16}/);
    for (const [name, value] of Object.entries({ ...workflow.env, ...step.env })) {
      if (/CSC_LINK|PASSWORD|APPLE_API/.test(name)) expect(value, name).toMatch(/^\$\{\{ secrets\.[A-Z0-9_]+ \}\}$/);
    }
  });

  it('verifies every package it builds: release fuses, and the test fuses for the end-to-end build', () => {
    const mac = runs(workflow.jobs.mac!);
    expect(mac).toContain('verify-package.mjs --app release/mac/Firedeck.app --fuses release --arch x64');
    expect(mac).toContain('verify-package.mjs --app release/mac-arm64/Firedeck.app --fuses release --arch arm64');
    const linux = runs(workflow.jobs.linux!);
    expect(linux).toMatch(/verify-package\.mjs --app "\$dir" --fuses release --arch \$\{\{ matrix\.arch \}\}/);
    const e2eBuild = stepRunning(workflow.jobs.linux!, /-c\.directories\.output=release-e2e/);
    expect(e2eBuild.env).toEqual({ FIREDECK_FUSES: 'test' });
    expect(e2eBuild.if).toBe('matrix.e2e');
    expect(e2eBuild.run).toContain('verify-package.mjs --app release-e2e/linux-unpacked --fuses test');
  });

  it('runs the end-to-end specs against the packaged test-fuse app, with Node modules rebuilt for Node first', () => {
    const step = stepRunning(workflow.jobs.linux!, /--project e2e/);
    expect(step.if).toBe('matrix.e2e');
    expect(step.env!.FIREDECK_E2E_ELECTRON_APP).toBe('${{ github.workspace }}/release-e2e/linux-unpacked/firedeck');
    const lines = step.run!.split('\n').map((l) => l.trim());
    const rebuild = lines.findIndex((l) => l.startsWith('npm rebuild better-sqlite3'));
    const specs = lines.findIndex((l) => l.includes('--project e2e'));
    expect(rebuild).toBeGreaterThanOrEqual(0);
    expect(rebuild).toBeLessThan(specs);
    expect(lines[specs]).toMatch(/^xvfb-run -a node build\/scripts\/test\.mjs --project e2e$/);
    // The rig reads that variable: the specs then launch the packaged binary, not node_modules/electron.
    expect(fs.readFileSync(path.join(root, 'test/rig/chromium.ts'), 'utf8')).toContain('FIREDECK_E2E_ELECTRON_APP');
    expect(workflow.jobs.linux!.strategy!.matrix.include.filter((m) => m.e2e === true).map((m) => m.arch)).toEqual([
      'x64',
    ]);
  });

  it('packages the daemon on both CPUs and install-tests it in a fresh Debian guest', () => {
    const daemon = workflow.jobs.daemon!;
    expect(daemon.strategy!.matrix.include.map((m) => m.arch)).toEqual(['x64', 'arm64']);
    expect(runs(daemon)).toContain('npm run package:daemon');
    expect(stepRunning(daemon, /daemon-package\.test\.ts/).if).toBe('matrix.install-test');
    const setupNode = daemon.steps.find((s) => s.uses?.startsWith('actions/setup-node@'));
    expect(setupNode!.with!['node-version']).toBe('${{ env.NODE_VERSION }}');
    expect(workflow.env.NODE_VERSION).toBe('20');
  });

  it('uploads the installers and the daemon packages', () => {
    const uploads = Object.values(workflow.jobs).flatMap((j) =>
      j.steps.filter((s) => s.uses?.startsWith('actions/upload-artifact@')).map((s) => String(s.with!.path)),
    );
    const all = uploads.join('\n');
    for (const artefact of [
      'release/*.dmg',
      'release/*.zip',
      'release/*.AppImage',
      'release/*.deb',
      'release/daemon/*.deb',
      'release/daemon/*.tar.gz',
    ]) {
      expect(all).toContain(artefact);
    }
    for (const job of Object.values(workflow.jobs)) {
      for (const s of job.steps.filter((x) => x.uses?.startsWith('actions/upload-artifact@'))) {
        expect(s.with!['if-no-files-found']).toBe('error');
      }
    }
  });

  it('names only scripts, npm scripts and files this repository has, and pins every action to a major version', () => {
    const allRuns = Object.values(workflow.jobs).map(runs).join('\n');
    for (const m of allRuns.matchAll(/npm run ([\w:-]+)/g)) expect(pkg.scripts, m[1]).toHaveProperty(m[1]!);
    for (const m of allRuns.matchAll(/node (build\/[\w/.-]+\.mjs)/g))
      expect(fs.existsSync(path.join(root, m[1]!)), m[1]).toBe(true);
    for (const m of allRuns.matchAll(/(test\/integration\/[\w.-]+\.test\.ts|build\/scripts\/[\w.-]+\.txt)/g)) {
      expect(fs.existsSync(path.join(root, m[1]!)), m[1]).toBe(true);
    }
    for (const job of Object.values(workflow.jobs)) {
      for (const s of job.steps) if (s.uses) expect(s.uses).toMatch(/^actions\/[a-z-]+@v\d+$/);
      expect(job['runs-on']).toBeTruthy();
    }
    // Expressions are closed (a stray `${{` fails the whole workflow at load time).
    expect(text.split('${{').length).toBe(text.split('}}').length);
  });
});
