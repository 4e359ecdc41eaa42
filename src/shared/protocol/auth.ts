import { z } from 'zod';
import { IsoTime, OwnerId, SafeName, VmId } from './common';
import { ProviderName } from './providers';

/**
 * An auth session: support staff completing a CLI's OAuth login on a user's behalf (ARCHITECTURE.md,
 * "Credentials"). pending → vm_created → ready → awaiting_user_auth → authenticating → completed, or one of the
 * ends failed | timeout | cancelled from any live state.
 *  - vm_created: the browser VM exists and boots (the user's CLI VM exists too);
 *  - ready: the browser VM's readiness markers (vm, vnc, agent) arrived and its agent answers;
 *  - awaiting_user_auth: the login runs and its authorize URL is open in the browser VM's Firefox;
 *  - authenticating: the CLI wrote its credential; it is captured, vaulted, written into the CLI VM, verified;
 *  - completed: verified in the CLI VM (the browser VM is destroyed at capture).
 */
export const AuthSessionState = z.enum([
  'pending',
  'vm_created',
  'ready',
  'awaiting_user_auth',
  'authenticating',
  'completed',
  'failed',
  'timeout',
  'cancelled',
]);
export type AuthSessionState = z.infer<typeof AuthSessionState>;

export const AUTH_END_STATES: readonly AuthSessionState[] = ['completed', 'failed', 'timeout', 'cancelled'];

export function isAuthSessionLive(state: AuthSessionState): boolean {
  return !AUTH_END_STATES.includes(state);
}

/** The moves an auth session may make; any other is refused (`invalid_state`). */
export const AUTH_TRANSITIONS: Readonly<Record<AuthSessionState, readonly AuthSessionState[]>> = {
  pending: ['vm_created', 'awaiting_user_auth', 'failed', 'timeout', 'cancelled'],
  vm_created: ['ready', 'failed', 'timeout', 'cancelled'],
  ready: ['awaiting_user_auth', 'failed', 'timeout', 'cancelled'],
  awaiting_user_auth: ['authenticating', 'failed', 'timeout', 'cancelled'],
  // Not cancellable: the credential is captured and the browser VM gone (a copy is a move), so it is written.
  authenticating: ['completed', 'failed', 'timeout'],
  completed: [],
  failed: [],
  timeout: [],
  cancelled: [],
};

/** browser: the login runs in a throw-away browser VM; headless: in the CLI VM, showing a URL and a code. */
export const AuthMode = z.enum(['browser', 'headless']);
export type AuthMode = z.infer<typeof AuthMode>;

export const AuthSessionId = z.string().regex(/^auth-[0-9a-f]{8,32}$/, 'not an auth session id (auth-<hex>)');

export const AuthTransition = z.object({
  state: AuthSessionState,
  at: IsoTime,
  /** Why, in words (never a secret). */
  reason: z.string().nullable(),
  /** Who made the move: the OS user the daemon saw, or `firedeckd` for the daemon's own steps. */
  actor: z.string(),
});
export type AuthTransition = z.infer<typeof AuthTransition>;

export const AuthSession = z.object({
  id: AuthSessionId,
  user: OwnerId,
  provider: ProviderName,
  mode: AuthMode,
  state: AuthSessionState,
  /** The OS user who started it, as the kernel told the daemon. */
  startedBy: z.string(),
  createdAt: IsoTime,
  updatedAt: IsoTime,
  /** When the current state times out (null in an end state). */
  deadline: IsoTime.nullable(),
  /** The throw-away browser VM (null before it exists and in headless mode); destroyed at capture or end. */
  browserVmId: VmId.nullable(),
  /** The user's persistent CLI VM: where the credential goes, and the VM the app opens afterwards. */
  cliVmId: VmId.nullable(),
  cliVmName: SafeName.nullable(),
  /** The authorize URL the login opened (for reference; the login itself happens in the browser VM). */
  authorizeUrl: z.string().nullable(),
  /** Headless logins: the one-time code to enter at the URL, when the CLI printed one. */
  userCode: z.string().nullable(),
  /** Headless paste-code logins: the CLI waits for a code (auth.submitCode). */
  awaitingCode: z.boolean(),
  /** After completion: what was written into the CLI VM and how it was verified (hashes, never contents). */
  result: z
    .object({
      cliVmId: VmId,
      cliVmName: SafeName,
      path: z.string(),
      sha256: z.string().regex(/^[0-9a-f]{64}$/),
      /** in_place: a headless login, the CLI wrote it in the CLI VM itself (checked there). */
      transfer: z.enum(['online', 'offline', 'in_place']),
      verifiedBy: z.enum(['status-check', 'hash']),
      writtenAt: IsoTime,
    })
    .nullable(),
  /** Why it failed, timed out or was cancelled. */
  error: z.object({ kind: z.string(), message: z.string(), hint: z.string().optional() }).nullable(),
  /** The session this one retries. */
  retryOf: AuthSessionId.nullable(),
  transitions: z.array(AuthTransition),
});
export type AuthSession = z.infer<typeof AuthSession>;

export const AuthStartParams = z
  .object({
    user: OwnerId,
    provider: ProviderName,
    /** browser (default) or headless (where the provider has a headless login). */
    mode: AuthMode.optional(),
  })
  .strict();
export type AuthStartParams = z.infer<typeof AuthStartParams>;

export const AuthSessionRef = z.object({ id: AuthSessionId }).strict();

export const AuthListParams = z
  .object({
    user: OwnerId.optional(),
    provider: ProviderName.optional(),
    state: AuthSessionState.optional(),
    /** Only live sessions. */
    live: z.boolean().optional(),
    /** Newest first; at most this many (default 100). */
    limit: z.number().int().min(1).max(1000).optional(),
    /** Page on: sessions created before this one. */
    before: AuthSessionId.optional(),
  })
  .strict();
export type AuthListParams = z.infer<typeof AuthListParams>;

export const AuthSubmitCodeParams = z
  .object({
    id: AuthSessionId,
    /** The code the provider's page showed, pasted back (headless paste-code logins). */
    code: z
      .string()
      .min(1)
      .max(2048)
      .regex(/^[\x21-\x7e]+$/, 'a code is printable ASCII without spaces'),
  })
  .strict();
