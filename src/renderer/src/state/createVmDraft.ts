import { OwnerId, SafeName } from '../../../shared/protocol/common';
import type { DaemonInfo, DriverName } from '../../../shared/protocol/daemon';
import type { GoldenImageVersion } from '../../../shared/protocol/image';
import { VM_KIND_DEFAULTS, VM_SIZE_LIMITS, type VmCreateParams, type VmKind } from '../../../shared/protocol/vm';

/** The create form as typed: sizes stay text until they are checked, so a half-typed number is never lost. */
export interface CreateVmDraft {
  hostId: string;
  name: string;
  kind: VmKind;
  owner: string;
  /** A published image name (its current version) or a pinned `name@version`. */
  image: string;
  vcpus: string;
  memoryMib: string;
  diskMib: string;
  /** '' lets the daemon pick its default driver. */
  driver: DriverName | '';
}

export type DraftField = Exclude<keyof CreateVmDraft, 'hostId'> | 'host';
/** Per field, what is wrong and how to fix it. */
export type DraftErrors = Partial<Record<DraftField, string>>;

/** What the form needs to know of a host: its `daemon.info` (drivers, free memory and disk) and its images. */
export interface CreateVmChoices {
  hostName: string;
  info: DaemonInfo;
  images: readonly GoldenImageVersion[];
}

/** The host's limits for one draft: null where the host does not say (an older daemon). */
export interface HostLimits {
  memoryAvailableMib: number | null;
  memoryTotalMib: number | null;
  diskFreeMib: number | null;
  diskTotalMib: number | null;
  diskPath: string | null;
  /** The chosen image's root file system: a VM's disk is never smaller. */
  imageMinDiskMib: number | null;
  /** Drivers the host can run VMs with now. */
  drivers: DriverName[];
  defaultDriver: DriverName | null;
}

const MIB = 1024 * 1024;

export function emptyDraft(hostId: string, kind: VmKind = 'cli'): CreateVmDraft {
  const size = VM_KIND_DEFAULTS[kind];
  return {
    hostId,
    name: '',
    kind,
    owner: '',
    image: '',
    vcpus: String(size.vcpus),
    memoryMib: String(size.memoryMib),
    diskMib: String(size.diskMib),
    driver: '',
  };
}

/**
 * A new kind: sizes the operator left at the old kind's defaults take the new kind's, and the image follows
 * the kind when it was the old kind's image (`cli` → `browser`); what was typed otherwise stays.
 */
export function withKind(draft: CreateVmDraft, kind: VmKind, images: readonly GoldenImageVersion[]): CreateVmDraft {
  const from = VM_KIND_DEFAULTS[draft.kind];
  const to = VM_KIND_DEFAULTS[kind];
  const next = { ...draft, kind };
  for (const key of ['vcpus', 'memoryMib', 'diskMib'] as const) {
    if (draft[key] === String(from[key])) next[key] = String(to[key]);
  }
  if (draft.image === '' || draft.image === draft.kind) next.image = defaultImage(kind, images);
  return next;
}

/** The kind's own image when the host publishes one (`cli`, `browser`), else the first one published. */
export function defaultImage(kind: VmKind, images: readonly GoldenImageVersion[]): string {
  const names = imageNames(images);
  return names.includes(kind) ? kind : (names[0] ?? '');
}

function imageNames(images: readonly GoldenImageVersion[]): string[] {
  return [...new Set(images.map((i) => i.name))].sort();
}

export interface ImageChoice {
  value: string;
  label: string;
}

/** Each image by name (its current version), then each version pinned (`name@version`), newest first. */
export function imageChoices(images: readonly GoldenImageVersion[]): ImageChoice[] {
  const out: ImageChoice[] = [];
  for (const name of imageNames(images)) {
    const versions = images.filter((i) => i.name === name).sort((a, b) => b.builtAt.localeCompare(a.builtAt));
    const current = versions.find((v) => v.current);
    out.push({
      value: name,
      label: current ? `${name} (current: ${current.version})` : `${name} (no current version)`,
    });
    for (const v of versions) out.push({ value: `${name}@${v.version}`, label: `${name}@${v.version}` });
  }
  return out;
}

/** The version a ref boots: `name@version` exactly, `name` its current version. */
export function imageVersionOf(ref: string, images: readonly GoldenImageVersion[]): GoldenImageVersion | undefined {
  const at = ref.indexOf('@');
  if (at >= 0) return images.find((i) => i.name === ref.slice(0, at) && i.version === ref.slice(at + 1));
  return images.find((i) => i.name === ref && i.current);
}

export function hostLimits(choices: CreateVmChoices, image: string): HostLimits {
  const r = choices.info.resources;
  const version = imageVersionOf(image, choices.images);
  return {
    memoryAvailableMib: r ? Math.floor(r.memoryAvailableBytes / MIB) : null,
    memoryTotalMib: r ? Math.floor(r.memoryTotalBytes / MIB) : null,
    diskFreeMib: r ? Math.floor(r.diskFreeBytes / MIB) : null,
    diskTotalMib: r ? Math.floor(r.diskTotalBytes / MIB) : null,
    diskPath: r?.diskPath ?? null,
    imageMinDiskMib: version ? Math.ceil(version.rootfsBytes / MIB) : null,
    drivers: choices.info.drivers.filter((d) => d.available).map((d) => d.name),
    defaultDriver: choices.info.defaultDriver,
  };
}

/** A whole number typed into a size field, or why not. */
function wholeNumber(text: string, unit: string, bounds: { min: number; max: number }): number | string {
  const t = text.trim();
  if (!/^\d+$/.test(t)) return `Type a whole number of ${unit} (${bounds.min}–${bounds.max}).`;
  const n = Number(t);
  if (n < bounds.min) return `At least ${bounds.min} ${unit}: type ${bounds.min} or more.`;
  if (n > bounds.max) return `At most ${bounds.max} ${unit}: type ${bounds.max} or less.`;
  return n;
}

/**
 * Every problem of the draft against the host's limits, each with its fix; empty when it may be sent.
 * `vmNames`: the names of the VMs the host has now (a new VM's name must be free).
 */
export function validateDraft(
  draft: CreateVmDraft,
  choices: CreateVmChoices | null,
  vmNames: readonly string[] = [],
): DraftErrors {
  const errors: DraftErrors = {};
  if (draft.hostId === '' || choices === null) errors.host = 'Pick a connected host (its limits are not loaded yet).';
  if (draft.name.trim() === '') errors.name = 'Name the VM, e.g. dev-alice.';
  else if (!SafeName.safeParse(draft.name).success)
    errors.name = 'Use 1–63 of a-z, 0-9 and "-", starting with a letter or digit.';
  else if (vmNames.includes(draft.name))
    errors.name = `${choices?.hostName ?? 'The host'} already has a VM named ${draft.name}: pick another name.`;
  if (draft.owner.trim() === '') errors.owner = 'Say whose VM it is, e.g. alice@example.org.';
  else if (!OwnerId.safeParse(draft.owner).success)
    errors.owner = 'Use letters, digits and . _ @ + - (up to 128), starting with a letter or digit.';

  const limits = choices ? hostLimits(choices, draft.image) : null;
  if (choices && choices.images.length === 0) {
    errors.image = `${choices.hostName} has no golden image: build one there (firedeckd image build <recipe>).`;
  } else if (draft.image === '') errors.image = 'Pick an image.';
  else if (choices && !imageVersionOf(draft.image, choices.images)) {
    errors.image = draft.image.includes('@')
      ? `${draft.image} is not on ${choices.hostName}: pick a version it has.`
      : `${draft.image} has no current version on ${choices.hostName}: pick a pinned version or promote one.`;
  }

  const vcpus = wholeNumber(draft.vcpus, 'vCPUs', VM_SIZE_LIMITS.vcpus);
  if (typeof vcpus === 'string') errors.vcpus = vcpus;

  const memory = wholeNumber(draft.memoryMib, 'MiB', VM_SIZE_LIMITS.memoryMib);
  if (typeof memory === 'string') errors.memoryMib = memory;
  else if (limits?.memoryAvailableMib != null && memory > limits.memoryAvailableMib)
    errors.memoryMib = `Only ${limits.memoryAvailableMib} MiB free on ${choices!.hostName}: ask for at most ${limits.memoryAvailableMib} MiB.`;

  const disk = wholeNumber(draft.diskMib, 'MiB', VM_SIZE_LIMITS.diskMib);
  if (typeof disk === 'string') errors.diskMib = disk;
  else if (limits?.imageMinDiskMib != null && disk < limits.imageMinDiskMib)
    errors.diskMib = `The image ${draft.image} needs at least ${limits.imageMinDiskMib} MiB: ask for ${limits.imageMinDiskMib} MiB or more.`;
  else if (limits?.diskFreeMib != null && disk > limits.diskFreeMib)
    errors.diskMib = `Only ${limits.diskFreeMib} MiB free in ${limits.diskPath}: ask for at most ${limits.diskFreeMib} MiB.`;

  if (limits && draft.driver !== '' && !limits.drivers.includes(draft.driver)) {
    const why = choices!.info.drivers.find((d) => d.name === draft.driver)?.reason;
    errors.driver = `${draft.driver} is not usable on ${choices!.hostName}${why ? ` (${why})` : ''}: pick another driver.`;
  }
  if (limits && limits.drivers.length === 0) {
    const why = choices!.info.drivers.map((d) => `${d.name}: ${d.reason ?? 'unavailable'}`).join('; ');
    errors.driver = `${choices!.hostName} has no usable VM driver (${why}): install QEMU or Firecracker there.`;
  }
  return errors;
}

/** The `vm.create` params of a draft that passed `validateDraft`. */
export function createParams(draft: CreateVmDraft): VmCreateParams {
  return {
    name: draft.name,
    kind: draft.kind,
    owner: draft.owner,
    image: draft.image,
    vcpus: Number(draft.vcpus.trim()),
    memoryMib: Number(draft.memoryMib.trim()),
    diskMib: Number(draft.diskMib.trim()),
    ...(draft.driver !== '' ? { driver: draft.driver } : {}),
  };
}

/** Which field a daemon error belongs beside, by its kind (the form shows it there and at the top). */
export function fieldOfError(kind: string): DraftField | null {
  switch (kind) {
    case 'conflict':
      return 'name';
    case 'resource_exhausted':
      return 'memoryMib';
    case 'not_found':
      return 'image';
    case 'unavailable':
      return 'driver';
    default:
      return null;
  }
}
