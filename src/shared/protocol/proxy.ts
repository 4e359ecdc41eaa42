import { z } from 'zod';

/**
 * The proxy browser VMs use (their Firefox, the oauth agent and the login it runs). A URL may carry a user and
 * password: the daemon seals the settings in its vault, puts them on browser VMs' config drives only, and every
 * answer shows them redacted (`http://***@proxy:3128`). The daemon checks the URLs themselves
 * (host-daemon/src/credentials/proxySettings.ts); this contract bounds their size.
 */
export const ProxySetParams = z
  .object({
    http: z.string().max(2048).optional(),
    https: z.string().max(2048).optional(),
    /** Hosts, domains (`.example.com`), addresses or CIDRs that bypass the proxy. */
    noProxy: z.array(z.string().max(253)).max(256).optional(),
  })
  .strict();
export type ProxySetParams = z.infer<typeof ProxySetParams>;

/** What `proxy.get` / `proxy.set` / `proxy.clear` answer: the settings with any user and password redacted. */
export const ProxyView = z.object({
  configured: z.boolean(),
  http: z.string().nullable(),
  https: z.string().nullable(),
  noProxy: z.array(z.string()),
});
export type ProxyView = z.infer<typeof ProxyView>;
