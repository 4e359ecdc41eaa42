import { inspect } from 'node:util';
import { FiredeckError } from '../../../src/shared/errors';

/** Proxy settings for browser VMs as the operator gives them; a URL may carry a user and password. */
export interface ProxySettingsInput {
  http?: string;
  https?: string;
  /** Hosts, domains (`.example.com`), addresses or CIDRs that bypass the proxy. */
  noProxy?: readonly string[];
}

export interface ProxyValues {
  http: string | null;
  https: string | null;
  noProxy: string[];
}

const SCHEMES = new Set(['http:', 'https:', 'socks5:', 'socks5h:']);
const NO_PROXY_ENTRY = /^[A-Za-z0-9.*:_[\]/-]{1,253}$/;
const MAX_URL = 2048;

/**
 * Validated proxy settings. They reach a browser VM only through its config drive (`reveal()` there); everywhere
 * else they show as `redacted()`, with any user and password replaced. Errors name the field, never its value.
 */
export class ProxySettings {
  readonly #values: ProxyValues;

  private constructor(values: ProxyValues) {
    this.#values = values;
  }

  static parse(input: ProxySettingsInput): ProxySettings {
    const known = new Set(['http', 'https', 'noProxy']);
    for (const key of Object.keys(input)) {
      if (!known.has(key)) throw new FiredeckError('invalid_params', `Unknown proxy setting ${JSON.stringify(key)}`);
    }
    const noProxy = input.noProxy ?? [];
    if (!Array.isArray(noProxy) || noProxy.length > 256) {
      throw new FiredeckError('invalid_params', 'proxy noProxy must be a list of at most 256 hosts');
    }
    noProxy.forEach((entry, i) => {
      if (typeof entry !== 'string' || !NO_PROXY_ENTRY.test(entry)) {
        throw new FiredeckError('invalid_params', `proxy noProxy[${i}] is not a host, domain, address or CIDR`);
      }
    });
    return new ProxySettings({
      http: proxyUrl(input.http, 'http'),
      https: proxyUrl(input.https, 'https'),
      noProxy: [...noProxy],
    });
  }

  /** From the vault's own storage (already validated when stored, checked again all the same). */
  static fromJson(text: string): ProxySettings {
    const parsed = JSON.parse(text) as { http: string | null; https: string | null; noProxy: string[] };
    return ProxySettings.parse({
      ...(parsed.http === null ? {} : { http: parsed.http }),
      ...(parsed.https === null ? {} : { https: parsed.https }),
      noProxy: parsed.noProxy,
    });
  }

  /** The full values, passwords included: for the config drive and nothing else. */
  reveal(): ProxyValues {
    return { http: this.#values.http, https: this.#values.https, noProxy: [...this.#values.noProxy] };
  }

  /** For display, logs and events: `http://***@proxy:3128`. */
  redacted(): ProxyValues {
    return {
      http: redactUrl(this.#values.http),
      https: redactUrl(this.#values.https),
      noProxy: [...this.#values.noProxy],
    };
  }

  /** Serialised form that the vault seals. */
  sealable(): string {
    return JSON.stringify(this.#values);
  }

  toJSON(): ProxyValues {
    return this.redacted();
  }

  toString(): string {
    return `ProxySettings ${JSON.stringify(this.redacted())}`;
  }

  [inspect.custom](): string {
    return this.toString();
  }
}

function proxyUrl(value: string | undefined, field: string): string | null {
  if (value === undefined || value === '') return null;
  const bad = (): FiredeckError =>
    new FiredeckError('invalid_params', `proxy ${field} is not a proxy URL`, {
      hint: 'Use http://[user:password@]host:port (also https, socks5, socks5h), without spaces.',
    });
  // Control characters and spaces would break the config drive's KEY=value lines or a shell that reads them.
  if (typeof value !== 'string' || value.length > MAX_URL || /[\s\p{Cc}"'`\\]/u.test(value)) throw bad();
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw bad();
  }
  if (!SCHEMES.has(url.protocol) || url.hostname === '' || url.search !== '' || url.hash !== '') throw bad();
  if (url.pathname !== '' && url.pathname !== '/') throw bad();
  return value;
}

function redactUrl(value: string | null): string | null {
  if (value === null) return null;
  const url = new URL(value);
  if (url.username === '' && url.password === '') return value;
  return `${url.protocol}//***@${url.host}${url.pathname === '/' && !value.endsWith('/') ? '' : url.pathname}`;
}
