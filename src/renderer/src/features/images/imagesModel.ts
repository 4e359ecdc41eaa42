import { IMAGE_BUILD_STEPS, type GoldenImageVersion, type ImageBuildStep } from '../../../../shared/protocol/image';
import type { KnownBuild } from '../../state/imagesStore';

/** Steps the view draws for a build (prepare is too short to show on its own). */
export const SHOWN_STEPS = IMAGE_BUILD_STEPS.filter((s) => s !== 'prepare');

const STEP_LABELS: Record<ImageBuildStep, string> = {
  prepare: 'prepare',
  base: 'base',
  npm: 'npm',
  files: 'files',
  checks: 'checks',
  rootfs: 'rootfs',
  'boot-test': 'boot test',
  publish: 'publish',
};

export function stepLabel(step: ImageBuildStep): string {
  return STEP_LABELS[step];
}

/** Where a step stands in a build: done, the one running (or the one it failed in), or still to come. */
export function stepState(build: KnownBuild['build'], step: ImageBuildStep): 'done' | 'active' | 'failed' | 'pending' {
  const at = IMAGE_BUILD_STEPS.indexOf(build.step);
  const index = IMAGE_BUILD_STEPS.indexOf(step);
  if (build.status === 'succeeded') return 'done';
  if (index < at) return 'done';
  if (index > at) return 'pending';
  return build.status === 'running' ? 'active' : 'failed';
}

/** 1536 → "1.5 KiB": binary units, one decimal below 10. */
export function formatBytes(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${unit === 0 || value >= 10 ? Math.round(value) : value.toFixed(1)} ${units[unit]}`;
}

/** A build's running time so far (or in all, once ended): "1 min 05 s". */
export function formatElapsed(startedAt: string, endedAt: string | null, now: number): string {
  const end = endedAt === null ? now : Date.parse(endedAt);
  const seconds = Math.max(0, Math.round((end - Date.parse(startedAt)) / 1000));
  if (seconds < 60) return `${seconds} s`;
  return `${Math.floor(seconds / 60)} min ${String(seconds % 60).padStart(2, '0')} s`;
}

/** A host's versions grouped by image name (names sorted), newest version first within each. */
export function byImage(versions: readonly GoldenImageVersion[]): [string, GoldenImageVersion[]][] {
  const groups = new Map<string, GoldenImageVersion[]>();
  for (const v of versions) groups.set(v.name, [...(groups.get(v.name) ?? []), v]);
  return [...groups.entries()]
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([name, list]) => [name, [...list].sort((a, b) => b.builtAt.localeCompare(a.builtAt))]);
}

/** Whether `rollback` has an older version to go to: the current one is not the oldest. */
export function canRollback(versions: readonly GoldenImageVersion[]): boolean {
  const oldestFirst = [...versions].sort((a, b) => a.builtAt.localeCompare(b.builtAt));
  const index = oldestFirst.findIndex((v) => v.current);
  return index > 0;
}
