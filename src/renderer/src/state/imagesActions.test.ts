import { beforeEach, describe, expect, it } from 'vitest';
import type { AppCallName, AppEvent, AppParams, AppResult } from '../../../shared/app/contract';
import { FiredeckError } from '../../../shared/errors';
import type { DaemonEvent } from '../../../shared/protocol/events';
import type { GoldenImageVersion, ImageBuild } from '../../../shared/protocol/image';
import { runningBuild, version } from '../features/images/imagesFixtures';
import type { AppClient } from '../api/appClient';
import { BUILD_LOG_MAX_LINES } from './buildLog';
import { useConfirmStore } from './confirmStore';
import { createImagesActions, gcDetail } from './imagesActions';
import { buildKey, useImagesStore } from './imagesStore';

/** A host daemon for the renderer: its image methods answered from memory, every call recorded. */
class ImagesHost implements AppClient {
  readonly transport = 'websocket' as const;
  readonly calls: { method: string; params: Record<string, unknown> }[] = [];
  versions: GoldenImageVersion[] = [version('v1'), version('v2', { current: true })];
  builds: ImageBuild[] = [];
  plan = { removed: ['test@v1', 'layer base-1234.tar'], freedBytes: 800 << 20 };
  private listener: ((e: AppEvent) => void) | null = null;

  call<N extends AppCallName>(name: N, params: AppParams<N>): Promise<AppResult<N>> {
    const { method, params: p } = params as { method: string; params: Record<string, unknown> };
    if (name !== 'daemon.call') return Promise.reject(new Error(`unexpected ${name}`));
    this.calls.push({ method, params: p });
    const answer = (value: unknown) => Promise.resolve(value as AppResult<N>);
    switch (method) {
      case 'image.list':
        return answer(this.versions);
      case 'image.builds':
        return answer(this.builds);
      case 'image.build.start': {
        const b = runningBuild({ buildId: 'build-00000001', step: 'prepare', log: [], logLines: 0 });
        this.builds.push(b);
        return answer(b);
      }
      case 'image.build.cancel':
        return answer({ ...this.builds[0]!, status: 'cancelled' });
      case 'image.promote':
        this.versions = this.versions.map((v) => ({ ...v, current: v.version === p.version }));
        return answer(this.versions.find((v) => v.current));
      case 'image.rollback':
        return Promise.reject(new FiredeckError('invalid_state', 'image test has no version older than v1'));
      case 'image.gc.plan':
        return answer(this.plan);
      case 'image.gc':
        return answer(this.plan);
      default:
        return Promise.reject(new Error(`unexpected ${method}`));
    }
  }
  onEvent(listener: (e: AppEvent) => void): () => void {
    this.listener = listener;
    return () => undefined;
  }
  emit(event: Extract<DaemonEvent, { type: 'image.build' }>, seq = 1): void {
    this.listener?.({
      type: 'daemon.event',
      hostId: 'h1',
      envelope: { subscription: 's', seq, at: '2026-12-04T01:05:00Z', event },
    });
  }
  methods(): string[] {
    return this.calls.map((c) => c.method);
  }
}

const settle = () => new Promise((r) => setTimeout(r, 0));

beforeEach(() => {
  useImagesStore.setState({ versions: {}, builds: {}, errors: {}, busy: {} });
  useConfirmStore.setState({ pending: null });
});

describe('images actions', () => {
  it('a reopened app finds a build in progress with its log, and events carry it on to its end', async () => {
    const host = new ImagesHost();
    host.builds = [runningBuild()];
    const actions = createImagesActions(host);
    await actions.refresh('h1');

    const known = useImagesStore.getState().builds[buildKey('h1', 'build-0000abcd')]!;
    expect(known.build).toMatchObject({ status: 'running', step: 'rootfs', percent: 62 });
    expect(known.log.tail(10)).toEqual(['base: reused layer', 'mkfs.ext4 done']);
    expect(known.log.droppedLines).toBe(38);
    expect(useImagesStore.getState().versions.h1).toHaveLength(2);

    const event = { type: 'image.build', buildId: 'build-0000abcd', recipe: 'test' } as const;
    host.emit({ ...event, step: 'boot-test', percent: 75, line: null, status: 'running' });
    host.emit({ ...event, step: 'boot-test', percent: null, line: 'FIREDECK-READY vm', status: 'running' });
    let now = useImagesStore.getState().builds[buildKey('h1', 'build-0000abcd')]!;
    expect(now.build).toMatchObject({ step: 'boot-test', percent: 75, logLines: 41 });
    expect(now.log.tail(1)).toEqual(['FIREDECK-READY vm']);

    // The end: the catalog is fetched again (a new version is current now).
    host.versions = [...host.versions, version('v3', { current: true })];
    const before = host.methods().filter((m) => m === 'image.list').length;
    host.emit({ ...event, step: 'publish', percent: 100, line: null, status: 'succeeded' });
    await settle();
    now = useImagesStore.getState().builds[buildKey('h1', 'build-0000abcd')]!;
    expect(now.build.status).toBe('succeeded');
    expect(now.build.endedAt).toBe('2026-12-04T01:05:00Z');
    expect(host.methods().filter((m) => m === 'image.list').length).toBe(before + 1);
    expect(useImagesStore.getState().versions.h1).toHaveLength(3);
  });

  it('keeps a build started elsewhere (events only) and bounds its log', () => {
    const host = new ImagesHost();
    createImagesActions(host);
    const event = { type: 'image.build', buildId: 'build-0000beef', recipe: 'cli', step: 'npm' } as const;
    for (let i = 0; i < BUILD_LOG_MAX_LINES + 25; i++) {
      host.emit({ ...event, percent: null, line: `npm line ${i}`, status: 'running' }, i);
    }
    const known = useImagesStore.getState().builds[buildKey('h1', 'build-0000beef')]!;
    expect(known.build).toMatchObject({ recipe: 'cli', step: 'npm', status: 'running' });
    expect(known.log.length).toBe(BUILD_LOG_MAX_LINES);
    expect(known.log.droppedLines).toBe(25);
    expect(known.log.tail(1)).toEqual([`npm line ${BUILD_LOG_MAX_LINES + 24}`]);
  });

  it('starts a build in the daemon and cancels it there', async () => {
    const host = new ImagesHost();
    const actions = createImagesActions(host);
    expect(await actions.build('h1', 'test', { skipBootTest: true })).toBe(true);
    expect(host.calls.at(-1)).toEqual({ method: 'image.build.start', params: { recipe: 'test', skipBootTest: true } });
    expect(useImagesStore.getState().builds[buildKey('h1', 'build-00000001')]?.build.status).toBe('running');
    await actions.cancel('h1', 'build-00000001');
    expect(host.calls.find((c) => c.method === 'image.build.cancel')?.params).toEqual({ buildId: 'build-00000001' });
    expect(useImagesStore.getState().builds[buildKey('h1', 'build-00000001')]?.build.status).toBe('cancelled');
  });

  it('promotes and fetches the catalog again; a refused rollback leaves the catalog as it was', async () => {
    const host = new ImagesHost();
    const actions = createImagesActions(host);
    await actions.promote('h1', 'test', 'v1');
    expect(useImagesStore.getState().versions.h1?.find((v) => v.current)?.version).toBe('v1');
    await actions.rollback('h1', 'test');
    expect(host.methods()).toContain('image.rollback');
    expect(useImagesStore.getState().versions.h1?.find((v) => v.current)?.version).toBe('v1');
    expect(useImagesStore.getState().busy.h1).toBe(false);
  });

  it('gc shows what it will remove first and removes nothing when declined', async () => {
    const host = new ImagesHost();
    const actions = createImagesActions(host);
    const declined = actions.gc('h1');
    await expect.poll(() => useConfirmStore.getState().pending).not.toBeNull();
    const asked = useConfirmStore.getState().pending!;
    expect(asked.title).toBe('Collect 2 old image items?');
    expect(asked.detail).toBe(gcDetail(host.plan));
    expect(asked.detail).toContain('test@v1');
    expect(asked.detail).toContain('layer base-1234.tar');
    expect(asked.detail).toContain('800 MiB');
    useConfirmStore.getState().answer(false);
    expect(await declined).toBeNull();
    expect(host.methods()).not.toContain('image.gc');

    const accepted = actions.gc('h1');
    await expect.poll(() => useConfirmStore.getState().pending).not.toBeNull();
    useConfirmStore.getState().answer(true);
    expect(await accepted).toEqual(host.plan);
    expect(host.methods().filter((m) => m === 'image.gc')).toHaveLength(1);
  });

  it('gc with nothing to remove asks nothing', async () => {
    const host = new ImagesHost();
    host.plan = { removed: [], freedBytes: 0 };
    const actions = createImagesActions(host);
    expect(await actions.gc('h1')).toBeNull();
    expect(useConfirmStore.getState().pending).toBeNull();
    expect(host.methods()).not.toContain('image.gc');
  });
});
