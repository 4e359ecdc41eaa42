import { create } from 'zustand';
import type { AppError } from '../../../shared/errors';
import type { DaemonEvent } from '../../../shared/protocol/events';
import type { GoldenImageVersion, ImageBuild } from '../../../shared/protocol/image';
import { BuildLog } from './buildLog';

type BuildEvent = Extract<DaemonEvent, { type: 'image.build' }>;

/** A build as the app knows it: the daemon's record (without its log) and the log kept here, bounded. */
export interface KnownBuild {
  hostId: string;
  build: Omit<ImageBuild, 'log'>;
  log: BuildLog;
  /** Bumped with every change (the log is mutable), so a view re-renders. */
  version: number;
}

export function buildKey(hostId: string, buildId: string): string {
  return `${hostId}/${buildId}`;
}

/**
 * The images view's data: every connected host's catalog (`image.list`) and the builds it runs or ran
 * (`image.builds`, then `image.build` events), each build's log bounded by `BuildLog`.
 */
export interface ImagesState {
  versions: Record<string, GoldenImageVersion[]>;
  builds: Record<string, KnownBuild>;
  /** Per host: the last failure to load its images; null when the last load worked. */
  errors: Record<string, AppError | null>;
  /** A mutation (promote, rollback, gc, cancel) in flight, by host: its buttons wait. */
  busy: Record<string, boolean>;
  setVersions(hostId: string, versions: readonly GoldenImageVersion[]): void;
  /** The daemon's records: new ones added, known ones brought up to date (a longer log replaces ours). */
  applyBuilds(hostId: string, builds: readonly ImageBuild[]): void;
  /** One progress event: step, percent, status and a log line. A build not known yet is added from it. */
  applyEvent(hostId: string, event: BuildEvent, at: string): void;
  failed(hostId: string, error: AppError | null): void;
  setBusy(hostId: string, busy: boolean): void;
  dropHost(hostId: string): void;
}

export const useImagesStore = create<ImagesState>()((set) => ({
  versions: {},
  builds: {},
  errors: {},
  busy: {},
  setVersions: (hostId, versions) =>
    set((s) => ({ versions: { ...s.versions, [hostId]: [...versions] }, errors: { ...s.errors, [hostId]: null } })),
  applyBuilds: (hostId, records) =>
    set((s) => {
      const builds = { ...s.builds };
      for (const { log: tail, ...build } of records) {
        const key = buildKey(hostId, build.buildId);
        const known = builds[key];
        const log = known?.log ?? new BuildLog();
        // Events may have brought lines the snapshot also holds; the snapshot wins when it has more.
        if (known === undefined || build.logLines >= known.build.logLines)
          log.reset(tail, build.logLines - tail.length);
        const ended = known !== undefined && known.build.status !== 'running' && build.status === 'running';
        builds[key] = { hostId, build: ended ? known.build : build, log, version: (known?.version ?? 0) + 1 };
      }
      return { builds };
    }),
  applyEvent: (hostId, e, at) =>
    set((s) => {
      const key = buildKey(hostId, e.buildId);
      const known = s.builds[key];
      const base: Omit<ImageBuild, 'log'> = known?.build ?? {
        buildId: e.buildId,
        recipe: e.recipe,
        status: 'running',
        step: 'prepare',
        percent: null,
        startedAt: at,
        endedAt: null,
        version: null,
        reused: false,
        error: null,
        logLines: 0,
      };
      const log = known?.log ?? new BuildLog();
      if (e.line !== null) log.push(e.line);
      const build: Omit<ImageBuild, 'log'> = {
        ...base,
        step: e.step,
        status: e.status,
        percent: e.percent ?? base.percent,
        logLines: base.logLines + (e.line !== null ? 1 : 0),
        endedAt: e.status === 'running' ? base.endedAt : (base.endedAt ?? at),
      };
      return { builds: { ...s.builds, [key]: { hostId, build, log, version: (known?.version ?? 0) + 1 } } };
    }),
  failed: (hostId, error) => set((s) => ({ errors: { ...s.errors, [hostId]: error } })),
  setBusy: (hostId, busy) => set((s) => ({ busy: { ...s.busy, [hostId]: busy } })),
  dropHost: (hostId) =>
    set((s) => {
      const { [hostId]: _versions, ...versions } = s.versions;
      const { [hostId]: _error, ...errors } = s.errors;
      const builds = Object.fromEntries(Object.entries(s.builds).filter(([, b]) => b.hostId !== hostId));
      return { versions, errors, builds };
    }),
}));
