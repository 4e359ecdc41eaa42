import { z } from 'zod';

/** A name the daemon uses in paths and device names: no separators, no dots, short. */
export const SafeName = z
  .string()
  .regex(/^[a-z0-9][a-z0-9-]{0,62}$/, 'must be 1-63 characters of a-z, 0-9 and "-", starting with a letter or digit');

/** Ids the daemon issues, e.g. `vm-3f9c2a1b`. */
export const VmId = z.string().regex(/^vm-[0-9a-f]{8,32}$/, 'not a VM id (vm-<hex>)');

/** An end user's id as the operator's directory knows it (e-mail-like ids allowed, no path separators). */
export const OwnerId = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9._@+-]{0,127}$/, 'owner must be 1-128 characters of letters, digits and . _ @ + -');

export const IsoTime = z.string().datetime({ offset: true });
