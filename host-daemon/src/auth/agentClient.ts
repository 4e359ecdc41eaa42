import http from 'node:http';
import { z } from 'zod';
import { FiredeckError } from '../../../src/shared/errors';
import { ProviderName } from '../../../src/shared/protocol/providers';
import { Secret } from '../credentials/secret';

/** The oauth agent's port in every browser VM (images/browser/files/agent.mjs). */
export const AGENT_PORT = 8390;
/** A long poll asks the agent to hold the request this long at most (the agent caps it at 60 s). */
const LONG_POLL_MS = 25_000;
const SMALL_ANSWER_BYTES = 64 * 1024;
/** A credential and its companions: each file is at most 1 MiB, base64 grows it by a third. */
const CREDENTIAL_ANSWER_BYTES = 8 * 1024 * 1024;

export const AgentState = z.enum(['idle', 'starting', 'awaiting_user', 'captured', 'delivered', 'failed']);
export type AgentState = z.infer<typeof AgentState>;

const Health = z.object({ status: z.literal('ok'), vmId: z.string(), startedAt: z.string() });
const Started = z.object({ provider: ProviderName, state: AgentState });
const UrlAnswer = z.object({ provider: ProviderName, state: AgentState, url: z.string().max(16_384).nullable() });
export const AgentStatus = z.object({
  provider: ProviderName.nullable(),
  state: AgentState,
  url: z.string().max(16_384).nullable(),
  error: z.string().max(8192).nullable(),
  exitCode: z.number().int().nullable(),
});
export type AgentStatus = z.infer<typeof AgentStatus>;
const CredentialAnswer = z.object({
  provider: ProviderName,
  capturedAt: z.string(),
  files: z
    .array(
      z.object({
        path: z.string().max(256),
        contentBase64: z.string().regex(/^[A-Za-z0-9+/]*={0,2}$/),
        mode: z.number().int().min(0).max(0o7777),
      }),
    )
    .min(1)
    .max(8),
});

/** A captured file as the agent handed it over: its path relative to the user's home, and its bytes. */
export interface AgentFile {
  path: string;
  content: Secret;
  mode: number;
}

/**
 * The daemon's side of a browser VM's oauth agent: HTTP on the VM's private address, the VM's bearer token on
 * every request, every answer checked (a guest is not trusted to answer well). Errors name the VM and the call,
 * never the token or a credential.
 */
export class AgentClient {
  constructor(private readonly target: { vmName: string; address: string; token: string; port?: number }) {}

  async health(signal?: AbortSignal): Promise<void> {
    this.answer(Health, 'GET /health', await this.call('GET', '/health', { signal }));
  }

  async startLogin(provider: ProviderName, signal?: AbortSignal): Promise<void> {
    const pathname = `/auth/${provider}`;
    this.answer(Started, `POST ${pathname}`, await this.call('POST', pathname, { signal, body: {} }));
  }

  /** Waits (long polls) until the login's authorize URL is known or the login ended; returns the URL or the status. */
  async waitForUrl(provider: ProviderName, signal: AbortSignal): Promise<{ url: string } | { status: AgentStatus }> {
    for (;;) {
      const answer = this.answer(
        UrlAnswer,
        `GET /auth/${provider}/url`,
        await this.call('GET', `/auth/${provider}/url?waitMs=${LONG_POLL_MS}`, {
          signal,
          timeoutMs: LONG_POLL_MS + 15_000,
        }),
      );
      if (answer.url !== null) return { url: answer.url };
      if (answer.state === 'failed' || answer.state === 'captured' || answer.state === 'delivered') {
        return { status: await this.status(signal) };
      }
    }
  }

  async status(signal?: AbortSignal, since?: AgentState): Promise<AgentStatus> {
    const query = since === undefined ? '' : `?waitMs=${LONG_POLL_MS}&since=${since}`;
    return this.answer(
      AgentStatus,
      'GET /credentials/status',
      await this.call('GET', `/credentials/status${query}`, { signal, timeoutMs: LONG_POLL_MS + 15_000 }),
    );
  }

  /** Long polls until the agent's state is one of `until`. */
  async waitForState(until: readonly AgentState[], signal: AbortSignal): Promise<AgentStatus> {
    let status = await this.status(signal);
    while (!until.includes(status.state)) status = await this.status(signal, status.state);
    return status;
  }

  /** The captured credential and companions, once (the agent forgets them after answering). */
  async takeCredential(signal?: AbortSignal): Promise<{ provider: ProviderName; files: AgentFile[] }> {
    const raw = await this.call('GET', '/credentials/get', { signal, maxBytes: CREDENTIAL_ANSWER_BYTES });
    const parsed = this.answer(CredentialAnswer, 'GET /credentials/get', raw);
    return {
      provider: parsed.provider,
      files: parsed.files.map((f) => {
        const bytes = Buffer.from(f.contentBase64, 'base64');
        const content = Secret.from(bytes);
        bytes.fill(0);
        return { path: f.path, content, mode: f.mode };
      }),
    };
  }

  /**
   * An answer checked once against its schema; a malformed one is a typed error naming the fields that are wrong,
   * never their values (a guest's answer may hold a credential).
   */
  private answer<T>(schema: z.ZodType<T>, what: string, raw: unknown): T {
    const parsed = schema.safeParse(raw);
    if (parsed.success) return parsed.data;
    const fields = [...new Set(parsed.error.issues.map((i) => i.path.join('.') || '(answer)'))].slice(0, 8);
    throw new FiredeckError(
      'internal',
      `${what} on the agent of ${this.target.vmName}: malformed answer (${fields.join(', ')})`,
      {
        hint: "the browser VM's oauth agent does not speak this daemon's contract: rebuild the browser image",
        details: { vm: this.target.vmName, call: what, fields },
      },
    );
  }

  private call(
    method: 'GET' | 'POST',
    pathname: string,
    opts: { signal?: AbortSignal | undefined; body?: unknown; timeoutMs?: number; maxBytes?: number },
  ): Promise<unknown> {
    const what = `${method} ${pathname.split('?')[0]} on the agent of ${this.target.vmName}`;
    const maxBytes = opts.maxBytes ?? SMALL_ANSWER_BYTES;
    return new Promise((resolve, reject) => {
      const body = opts.body === undefined ? undefined : JSON.stringify(opts.body);
      const req = http.request(
        {
          host: this.target.address,
          port: this.target.port ?? AGENT_PORT,
          method,
          path: pathname,
          headers: {
            authorization: `Bearer ${this.target.token}`,
            ...(body !== undefined
              ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) }
              : {}),
          },
          timeout: opts.timeoutMs ?? 20_000,
          ...(opts.signal ? { signal: opts.signal } : {}),
        },
        (res) => {
          const chunks: Buffer[] = [];
          let size = 0;
          res.on('data', (d: Buffer) => {
            size += d.byteLength;
            if (size > maxBytes) {
              req.destroy(new FiredeckError('frame_too_large', `${what}: the answer exceeds ${maxBytes} bytes`));
              return;
            }
            chunks.push(d);
          });
          res.once('end', () => {
            const text = Buffer.concat(chunks);
            let parsed: unknown;
            try {
              parsed = JSON.parse(text.toString('utf8'));
            } catch {
              parsed = null;
            } finally {
              for (const c of chunks) c.fill(0);
              text.fill(0);
            }
            const status = res.statusCode ?? 0;
            if (status >= 200 && status < 300 && parsed !== null) return resolve(parsed);
            const said =
              typeof parsed === 'object' && parsed !== null && typeof (parsed as { error?: unknown }).error === 'string'
                ? scrubAgentText((parsed as { error: string }).error, this.target.token)
                : `HTTP ${status}`;
            reject(
              new FiredeckError(
                status === 401 ? 'unauthorized' : status === 409 || status === 410 ? 'invalid_state' : 'unavailable',
                `${what}: ${said}`,
              ),
            );
          });
          // The guest closed the connection mid-answer (Node says "aborted", ECONNRESET).
          res.once('error', (err: Error) =>
            reject(
              err instanceof FiredeckError
                ? err
                : new FiredeckError('unavailable', `${what}: the answer broke off (${errnoOf(err)})`),
            ),
          );
        },
      );
      req.once('timeout', () => req.destroy(new FiredeckError('timeout', `${what} did not answer in time`)));
      req.once('error', (err: Error) => {
        if (err instanceof FiredeckError) return reject(err);
        if (err.name === 'AbortError') return reject(new FiredeckError('cancelled', `${what} was abandoned`));
        reject(new FiredeckError('unavailable', `${what} failed: ${scrubAgentText(err.message, this.target.token)}`));
      });
      req.end(body);
    });
  }
}

/** Runs of characters a token, key or code is made of, long enough to be one. */
const SECRET_LOOKING = /[A-Za-z0-9+/=_.~-]{20,}/g;

/**
 * A guest's words fit for an error message: the VM's token and anything token-like replaced, control characters
 * dropped, at most 200 characters.
 */
export function scrubAgentText(text: string, token: string): string {
  const withoutToken = token.length > 0 ? text.split(token).join('[redacted]') : text;
  return (
    withoutToken
      .replace(SECRET_LOOKING, '[redacted]')
      // eslint-disable-next-line no-control-regex
      .replace(/[\u0000-\u001f\u007f]+/g, ' ')
      .slice(0, 200)
  );
}

function errnoOf(err: Error): string {
  const code = (err as NodeJS.ErrnoException).code;
  return typeof code === 'string' && /^[A-Z_]{1,40}$/.test(code) ? code : err.name;
}
