import { renderToStaticMarkup } from 'react-dom/server';
import { beforeEach, describe, expect, it } from 'vitest';
import { ActionsContext, type Actions } from '../../state/actionsContext';
import { useHostsStore } from '../../state/hostsStore';
import { useImagesStore } from '../../state/imagesStore';
import { ImagesView } from './ImagesView';
import { runningBuild, version } from './imagesFixtures';
import { stepState } from './imagesModel';

function render(): string {
  for (const store of [useImagesStore, useHostsStore]) Object.assign(store.getInitialState(), store.getState());
  return renderToStaticMarkup(
    <ActionsContext.Provider value={{} as Actions}>
      <ImagesView />
    </ActionsContext.Provider>,
  );
}

const host = (id: string, name: string) =>
  ({ id, name, kind: 'ssh', address: name, port: 22, user: 'root', auth: null, hostKeyFingerprint: null }) as const;
const connected = (hostId: string) =>
  ({ hostId, state: 'connected', info: null, error: null, attempt: 0, nextAttemptAt: null }) as const;

beforeEach(() => {
  useHostsStore.setState({
    hosts: [host('h1', 'rig'), host('h2', 'second')],
    selectedHostId: 'h1',
    statuses: { h1: connected('h1'), h2: connected('h2') },
  });
  useImagesStore.setState({ versions: {}, builds: {}, errors: {}, busy: {} });
});

describe('the images view', () => {
  it("shows every connected host's versions: current, size, hash, boot test, pinned VMs and the manifest", () => {
    useImagesStore
      .getState()
      .setVersions('h1', [
        version('v1', { pinnedBy: ['web-1', 'web-2'], bootTest: null }),
        version('v2', { current: true, npmGlobals: [{ name: '@openai/codex', version: '0.63.0' }] }),
      ]);
    useImagesStore.getState().setVersions('h2', []);
    const html = render();
    expect(html).toContain('data-testid="images-host-h1"');
    expect(html).toContain('No golden images on second yet');
    const v2 = html.slice(html.indexOf('data-testid="version-v2"'), html.indexOf('data-testid="version-v1"'));
    expect(v2).toContain('data-testid="current"');
    expect(v2).toContain('2.0 GiB');
    expect(v2).toContain('700 MiB');
    expect(v2).toContain('a'.repeat(12));
    expect(v2).toContain('passed</span> 25 s');
    expect(v2).toContain('b'.repeat(64));
    expect(v2).toContain('@openai/codex@0.63.0');
    expect(v2).toContain('systemd 252');
    expect(v2).not.toContain('>Promote<');
    const v1 = html.slice(html.indexOf('data-testid="version-v1"'));
    expect(v1).toContain('web-1, web-2');
    expect(v1).toContain('not run');
    expect(v1).toContain('>Promote<');
    // Newest first; the current one is not the oldest, so Roll back is offered.
    expect(html.indexOf('version-v2')).toBeLessThan(html.indexOf('version-v1'));
    expect(html).toMatch(/<button type="button" title="[^"]*">Roll back<\/button>/);
  });

  it('shows a running build by step with its log and a cancel, and an ended one with its error', () => {
    useImagesStore.getState().applyBuilds('h1', [
      runningBuild(),
      runningBuild({
        buildId: 'build-0000dead',
        status: 'failed',
        step: 'checks',
        startedAt: '2026-12-04T00:00:00Z',
        endedAt: '2026-12-04T00:01:05Z',
        error: { kind: 'build_failed', message: 'step checks: 1 check(s) failed\nnode', hint: 'fix the recipe' },
      }),
    ]);
    const html = render();
    const running = html.slice(html.indexOf('data-testid="build-build-0000abcd"'), html.indexOf('build-0000dead'));
    expect(running).toContain('>running</span>');
    expect(running).toContain('62%');
    expect(running).toContain('Cancel build');
    expect(running).toMatch(/class="build-step step-done" data-step="checks"/);
    expect(running).toMatch(/class="build-step step-active" data-step="rootfs"/);
    expect(running).toMatch(/class="build-step step-pending" data-step="boot-test"/);
    expect(running).toContain('base: reused layer\nmkfs.ext4 done');
    expect(running).toContain('Log (40 lines, last 2 shown)');
    const failed = html.slice(html.indexOf('data-testid="build-build-0000dead"'));
    expect(failed).toMatch(/class="build-step step-failed" data-step="checks"/);
    expect(failed).toContain('step checks: 1 check(s) failed<span class="muted"> fix the recipe</span>');
    expect(failed).toContain('1 min 05 s');
    expect(failed).not.toContain('Cancel build');
  });

  it('marks every step done once a build succeeded', () => {
    const ok = { ...runningBuild({ status: 'succeeded', step: 'publish' }) };
    expect(stepState(ok, 'base')).toBe('done');
    expect(stepState(ok, 'publish')).toBe('done');
  });

  it('asks for a host when none is connected', () => {
    useHostsStore.setState({ statuses: {} });
    expect(render()).toContain('Connect a host to see and build its golden images.');
  });
});
