/**
 * The part of oidc-provider 8's API the rig uses. The package ships no types, and @types/oidc-provider would be
 * another dependency for one file; this stays honest by being small.
 */
declare module 'oidc-provider' {
  import type { IncomingMessage, ServerResponse } from 'node:http';

  export interface Account {
    accountId: string;
    claims(use: string, scope: string): Promise<Record<string, unknown>> | Record<string, unknown>;
  }

  export interface Interaction {
    uid: string;
    prompt: { name: string; reasons: string[]; details: Record<string, unknown> };
    params: Record<string, unknown> & { client_id?: string; scope?: string };
    session?: { accountId?: string };
    grantId?: string;
  }

  export interface InteractionResults {
    login?: { accountId: string; remember?: boolean };
    consent?: { grantId: string };
    error?: string;
    error_description?: string;
  }

  export interface Grant {
    addOIDCScope(scope: string): void;
    save(): Promise<string>;
  }

  export interface ClientMetadata {
    client_id: string;
    application_type?: 'native' | 'web';
    token_endpoint_auth_method?: string;
    redirect_uris: string[];
    grant_types?: string[];
    response_types?: string[];
    scope?: string;
    [key: string]: unknown;
  }

  export interface Configuration {
    clients?: ClientMetadata[];
    findAccount?: (ctx: unknown, sub: string) => Promise<Account | undefined> | Account | undefined;
    interactions?: { url?: (ctx: unknown, interaction: Interaction) => string | Promise<string> };
    cookies?: {
      keys?: string[];
      long?: Record<string, unknown>;
      short?: Record<string, unknown>;
    };
    jwks?: { keys: Record<string, unknown>[] };
    features?: Record<string, { enabled: boolean; [key: string]: unknown }>;
    pkce?: { required?: (ctx: unknown, client: unknown) => boolean; methods?: string[] };
    scopes?: string[];
    claims?: Record<string, string[] | null>;
    ttl?: Record<string, number | ((...args: unknown[]) => number)>;
    rotateRefreshToken?: boolean | ((ctx: unknown) => boolean);
    [key: string]: unknown;
  }

  export default class Provider {
    constructor(issuer: string, configuration?: Configuration);
    readonly issuer: string;
    Grant: new (init: { accountId: string; clientId: string }) => Grant;
    callback(): (req: IncomingMessage, res: ServerResponse) => void;
    interactionDetails(req: IncomingMessage, res: ServerResponse): Promise<Interaction>;
    interactionFinished(
      req: IncomingMessage,
      res: ServerResponse,
      result: InteractionResults,
      options?: { mergeWithLastSubmission?: boolean },
    ): Promise<void>;
    on(event: string, listener: (...args: unknown[]) => void): this;
  }
}
