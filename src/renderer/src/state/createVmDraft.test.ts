import { describe, expect, it } from 'vitest';
import { createParams, emptyDraft, hostLimits, imageChoices, validateDraft, withKind } from './createVmDraft';
import { choices, info } from './createVmFixtures';

const good = () => ({ ...emptyDraft('h1'), name: 'dev-a', owner: 'alice@example.org', image: 'test' });

describe('the create form: checks before submit', () => {
  it('passes a draft within the limits and turns it into vm.create params', () => {
    expect(validateDraft(good(), choices())).toEqual({});
    expect(createParams({ ...good(), driver: 'qemu', memoryMib: ' 512 ' })).toEqual({
      name: 'dev-a',
      kind: 'cli',
      owner: 'alice@example.org',
      image: 'test',
      vcpus: 1,
      memoryMib: 512,
      diskMib: 4096,
      driver: 'qemu',
    });
    // No driver picked: the daemon's default.
    expect(createParams(good())).not.toHaveProperty('driver');
  });

  it("refuses memory above the host's free memory, saying how much may be asked", () => {
    expect(validateDraft({ ...good(), memoryMib: '3001' }, choices()).memoryMib).toBe(
      'Only 3000 MiB free on rig: ask for at most 3000 MiB.',
    );
    expect(validateDraft({ ...good(), memoryMib: '3000' }, choices()).memoryMib).toBeUndefined();
  });

  it("refuses a disk below the image's root file system, of the version the ref boots", () => {
    // `test` is its current version (v2, 1024 MiB); `test@v1` is 512 MiB.
    expect(validateDraft({ ...good(), diskMib: '1000' }, choices()).diskMib).toBe(
      'The image test needs at least 1024 MiB: ask for 1024 MiB or more.',
    );
    expect(validateDraft({ ...good(), image: 'test@v1', diskMib: '1000' }, choices()).diskMib).toBeUndefined();
    expect(hostLimits(choices(), 'cli').imageMinDiskMib).toBe(2048);
  });

  it('refuses a disk above the free space of the state dir', () => {
    expect(validateDraft({ ...good(), diskMib: '20001' }, choices()).diskMib).toBe(
      'Only 20000 MiB free in /var/lib/firedeck: ask for at most 20000 MiB.',
    );
  });

  it('says what is wrong with names, owners, numbers, images and drivers, and the fix', () => {
    const e = validateDraft(
      {
        ...good(),
        name: 'Bad_Name',
        owner: '-x',
        vcpus: '1.5',
        memoryMib: '',
        image: 'test@v9',
        driver: 'firecracker',
      },
      choices(),
    );
    expect(e.name).toMatch(/^Use 1–63 of a-z/);
    expect(e.owner).toMatch(/^Use letters, digits/);
    expect(e.vcpus).toBe('Type a whole number of vCPUs (1–32).');
    expect(e.memoryMib).toBe('Type a whole number of MiB (64–262144).');
    expect(e.image).toBe('test@v9 is not on rig: pick a version it has.');
    expect(e.driver).toBe('firecracker is not usable on rig (no /dev/kvm): pick another driver.');
    expect(validateDraft({ ...good(), vcpus: '33' }, choices()).vcpus).toBe('At most 32 vCPUs: type 32 or less.');
    expect(validateDraft({ ...good(), name: '' }, choices()).name).toBe('Name the VM, e.g. dev-alice.');
    // A name the host already uses.
    expect(validateDraft(good(), choices(), ['dev-a']).name).toBe(
      'rig already has a VM named dev-a: pick another name.',
    );
    expect(validateDraft(good(), choices({ images: [] })).image).toMatch(/^rig has no golden image: build one/);
    expect(validateDraft(good(), null).host).toMatch(/^Pick a connected host/);
  });

  it('checks only the bounds where an older daemon reports no free memory or disk', () => {
    const old = choices({ info: { ...info(), resources: undefined } });
    expect(hostLimits(old, 'test').memoryAvailableMib).toBeNull();
    expect(validateDraft({ ...good(), memoryMib: '100000' }, old)).toEqual({});
  });

  it('offers each image by name (current version) and each version pinned', () => {
    expect(imageChoices(choices().images).map((c) => c.value)).toEqual(['cli', 'cli@v1', 'test', 'test@v2', 'test@v1']);
    expect(imageChoices(choices().images)[2]!.label).toBe('test (current: v2)');
  });

  it("a new kind takes its defaults where the old kind's were left, and keeps what was typed", () => {
    const images = choices().images;
    const asBrowser = withKind({ ...good(), image: 'cli', memoryMib: '300' }, 'browser', images);
    expect(asBrowser).toMatchObject({ kind: 'browser', vcpus: '2', memoryMib: '300', diskMib: '6144' });
    // No `browser` image on this host: the kind's image falls back to the first published.
    expect(asBrowser.image).toBe('cli');
    expect(withKind({ ...good(), image: 'test@v1' }, 'browser', images).image).toBe('test@v1');
  });
});
