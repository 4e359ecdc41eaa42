import { createHash } from 'node:crypto';
import { FiredeckError } from '../../../src/shared/errors';
import type { AuthMode, AuthSession, AuthSessionState, AuthStartParams } from '../../../src/shared/protocol/auth';
import type { DaemonEvent } from '../../../src/shared/protocol/events';
import { PROVIDERS, type ProviderName, type ProviderSpec } from '../../../src/shared/protocol/providers';
import type { Vm } from '../../../src/shared/protocol/vm';
import { verifyCredentialInPlace, type CredentialPayload, type TransferResult } from '../credentials/transfer';
import type { GuestSshTarget } from '../guest/guestSsh';
import { validatePayload } from '../credentials/transferPayload';
import type { CredentialVault } from '../credentials/vault';
import { Secret } from '../credentials/secret';
import type { AuthTimeouts } from '../config';
import type { VmService } from '../vms/vmService';
import { AgentClient, type AgentFile, type AgentStatus } from './agentClient';
import { HeadlessLogin } from './headlessLogin';
import { HeadlessRun } from './headlessRun';
import type { AuthStore } from './authStore';

/** The daemon's own steps are recorded with this actor; a caller's with the OS user the kernel named. */
export const DAEMON_ACTOR = 'firedeckd';

/** Writes a captured credential into a CLI VM (host-daemon/src/credentials/transfer.ts). */
export interface CredentialWriter {
  online(
    target: { vmName: string; address: string; hostKey: string; keyDir: string },
    payload: CredentialPayload,
  ): Promise<TransferResult>;
  offline(vmId: string, payload: CredentialPayload): Promise<TransferResult>;
}

export interface AuthServiceDeps {
  store: AuthStore;
  vms: VmService;
  vault: CredentialVault;
  writer: CredentialWriter;
  emit: (event: DaemonEvent) => void;
  log: (line: string) => void;
  config: {
    cliImage: string;
    browserImage: string;
    timeouts: AuthTimeouts;
  };
  /** The agent of a browser VM; by default over HTTP to its address with its token. */
  agentFor?: (vm: Vm, token: string) => AgentClient;
}

/** Why a session's run stopped early: a caller's cancel, or its state's deadline. */
class Stopped extends Error {
  constructor(readonly how: 'cancelled' | 'timeout') {
    super(how);
  }
}

interface Running {
  controller: AbortController;
  timer: NodeJS.Timeout | null;
  done: Promise<void>;
}

/**
 * Auth sessions: a CLI's OAuth login on a user's behalf, end to end (ARCHITECTURE.md, "Credentials"). One run per
 * live session: it ensures the user's CLI VM, creates the browser VM, waits for its markers, starts the login
 * through the agent, waits for the person to log in, takes the credential once, destroys the browser VM (a copy
 * is a move), vaults it, writes it into the CLI VM and verifies it there. Every move goes through the store's
 * checked transitions and is announced as an `auth.session` event; every state has a deadline.
 */
export class AuthService {
  private readonly running = new Map<string, Running>();
  /** The headless logins running now, by session (auth.submitCode writes to their terminal). */
  private readonly headless = new Map<string, HeadlessRun>();
  private closed = false;

  constructor(private readonly deps: AuthServiceDeps) {}

  get(id: string): AuthSession {
    return this.deps.store.get(id);
  }

  list(params: Parameters<AuthStore['list']>[0]): AuthSession[] {
    return this.deps.store.list(params);
  }

  start(params: AuthStartParams, actor: string, retryOf: string | null = null): AuthSession {
    if (this.closed) throw new FiredeckError('unavailable', 'The daemon is shutting down');
    const spec = PROVIDERS[params.provider];
    const mode = params.mode ?? 'browser';
    if (mode === 'headless' && spec.headless === null) {
      throw new FiredeckError('invalid_params', `${spec.label} has no headless login`, {
        hint: 'Start the session without mode: a browser VM runs the login.',
      });
    }
    const session = this.deps.store.create({
      user: params.user,
      provider: params.provider,
      mode,
      startedBy: actor,
      deadline:
        mode === 'headless'
          ? new Date(Date.now() + this.headlessPendingSeconds() * 1000).toISOString()
          : this.deadlineFor('pending'),
      retryOf,
    });
    this.announce(session);
    this.deps.log(`auth ${session.id}: ${actor} started ${params.provider} for ${params.user}`);
    this.launch(session.id, spec, mode);
    return session;
  }

  /** A new session for the same user and provider as an ended one. */
  retry(id: string, actor: string): AuthSession {
    const old = this.deps.store.get(id);
    if (old.state !== 'failed' && old.state !== 'timeout' && old.state !== 'cancelled') {
      throw new FiredeckError(
        'invalid_state',
        `Auth session ${id} is ${old.state}; only a failed, timed-out or cancelled one is retried`,
      );
    }
    return this.start({ user: old.user, provider: old.provider, mode: old.mode }, actor, old.id);
  }

  /**
   * A code pasted back into a headless paste-code login: written to the CLI's terminal, never kept, logged or
   * announced; the session moves on to `authenticating` while the CLI redeems it.
   */
  submitCode(id: string, code: string, actor: string): AuthSession {
    const session = this.deps.store.get(id);
    const login = this.headless.get(id);
    if (!session.awaitingCode || login === undefined || session.state !== 'awaiting_user_auth') {
      throw new FiredeckError('invalid_state', `Auth session ${id} is not waiting for a code (${session.state})`, {
        hint: 'Only a headless login that shows a field for the code takes one.',
      });
    }
    login.submit(code);
    const moved = this.deps.store.transition(
      id,
      'authenticating',
      { reason: `a code was pasted back by ${actor}`, actor },
      { awaitingCode: false, deadline: this.deadlineFor('authenticating') },
    );
    this.armDeadline(id, 'authenticating');
    this.announce(moved);
    this.deps.log(`auth ${id}: ${actor} pasted a code back`);
    return moved;
  }

  /** Cancels a live session (not once its credential is captured: that one is written). */
  async cancel(id: string, actor: string): Promise<AuthSession> {
    const session = this.deps.store.transition(id, 'cancelled', { reason: `cancelled by ${actor}`, actor });
    this.announce(session);
    this.deps.log(`auth ${id}: cancelled by ${actor} in ${session.transitions.at(-2)?.state ?? '?'}`);
    const run = this.running.get(id);
    if (run) {
      run.controller.abort(new Stopped('cancelled'));
      await run.done;
    }
    return this.deps.store.get(id);
  }

  /**
   * After a daemon restart: a live session's run is gone with the old process, so it ends as failed (retry starts
   * a new one) and its browser VM is destroyed.
   */
  async settleAfterRestart(): Promise<void> {
    for (const s of this.deps.store.allLive()) {
      const ended = this.deps.store.transition(
        s.id,
        'failed',
        { reason: 'the daemon restarted during the session', actor: DAEMON_ACTOR },
        {
          error: {
            kind: 'unavailable',
            message: `firedeckd restarted while the session was ${s.state}`,
            hint: 'Retry the session.',
          },
        },
      );
      this.announce(ended);
      if (s.browserVmId) await this.destroyBrowserVm(s.browserVmId, s.id);
    }
  }

  /** Stops every run (their sessions end as failed: the daemon is going away) and waits for them. */
  async close(): Promise<void> {
    this.closed = true;
    const runs = [...this.running.values()];
    for (const r of runs) r.controller.abort(new Error('the daemon is shutting down'));
    await Promise.all(runs.map((r) => r.done));
  }

  private launch(id: string, spec: ProviderSpec, mode: AuthMode): void {
    const controller = new AbortController();
    const run: Running = { controller, timer: null, done: Promise.resolve() };
    this.running.set(id, run);
    if (mode === 'headless') {
      // pending covers the CLI VM's boot (if new) and the CLI's start until it prints its URL.
      this.armDeadline(id, 'pending', this.headlessPendingSeconds());
    } else this.armDeadline(id, 'pending');
    run.done = (
      mode === 'headless' ? this.runHeadless(id, spec, controller.signal) : this.run(id, spec, controller.signal)
    )
      .catch((err: unknown) => this.deps.log(`auth ${id}: run ended with ${String(err)}`))
      .finally(() => {
        if (run.timer) clearTimeout(run.timer);
        this.running.delete(id);
      });
  }

  private async run(id: string, spec: ProviderSpec, signal: AbortSignal): Promise<void> {
    const session = this.deps.store.get(id);
    let browserVmId: string | null = null;
    try {
      // The user's CLI VM first (found, or created from the cli image and booting beside the browser VM).
      const cli = await this.ensureCliVm(session.user, signal);
      this.update(id, { cliVmId: cli.id, cliVmName: cli.name });
      this.checkSignal(signal);

      const browser = await this.deps.vms.create({
        name: browserVmName(id),
        kind: 'browser',
        owner: session.user,
        image: this.deps.config.browserImage,
        sessionId: id,
        start: true,
      });
      browserVmId = browser.id;
      this.move(id, 'vm_created', `browser VM ${browser.name} created`, { browserVmId: browser.id });
      this.checkSignal(signal);

      for (const marker of ['vm', 'vnc', 'agent']) {
        await this.deps.vms.waitReady(browser.id, marker, this.beyondDeadline('vm_created'), signal);
      }
      const agent = this.agentOf(browser.id);
      await agent.health(signal);
      this.move(id, 'ready', 'the browser VM reached its markers (vm, vnc, agent) and its agent answers');

      await agent.startLogin(spec.name, signal);
      const opened = await agent.waitForUrl(spec.name, signal);
      if ('status' in opened) throw loginFailed(spec, opened.status);
      this.move(id, 'awaiting_user_auth', 'the login opened its authorize page in the browser VM', {
        authorizeUrl: opened.url,
      });

      const ended = await agent.waitForState(['captured', 'failed', 'delivered'], signal);
      if (ended.state !== 'captured') throw loginFailed(spec, ended);
      const taken = await agent.takeCredential(signal);
      // A copy is a move: the login's origin never runs that CLI again.
      this.move(id, 'authenticating', 'the CLI wrote its credential; captured');
      await this.destroyBrowserVm(browser.id, id);
      browserVmId = null;

      const payload = toPayload(spec, taken.provider, taken.files);
      const record = this.vault(id, session.user, spec.name, payload);
      this.update(id, { credentialId: record });
      const result = await this.writeIntoCliVm(id, cli.id, spec, record, signal);
      this.deps.vault.markWritten(record, cli.id);
      this.move(id, 'completed', `written into ${cli.name} and verified (${result.verifiedBy})`, {
        result: sessionResult(cli, result),
      });
    } catch (err) {
      this.end(id, err, signal);
    } finally {
      if (browserVmId !== null) await this.destroyBrowserVm(browserVmId, id);
    }
  }

  /**
   * A headless login (README, "Headless logins"): no browser VM. The provider's headless login runs in the user's
   * CLI VM over its sshd, as its user, on a pty; the URL of the provider's origin (and a device code) it prints go
   * on the session; a paste-code login waits for auth.submitCode; once the CLI ends well, the credential it wrote
   * in the VM is checked there (shape, hash, status check). The CLI's own error ends the session failed.
   */
  private async runHeadless(id: string, spec: ProviderSpec, signal: AbortSignal): Promise<void> {
    const session = this.deps.store.get(id);
    const headless = spec.headless!;
    let login: HeadlessLogin | null = null;
    try {
      const cli = await this.ensureCliVm(session.user, signal);
      this.update(id, { cliVmId: cli.id, cliVmName: cli.name });
      const target = await this.sshTarget(cli.id, this.headlessPendingSeconds() + 60, signal);
      this.checkSignal(signal);
      login = await HeadlessLogin.start(target, headless);
      const live = new HeadlessRun(login, headless);
      this.headless.set(id, live);
      this.deps.log(`auth ${id}: ${spec.name} headless login started in ${cli.name}`);

      const shown = await live.waitForUrl(signal);
      if ('failed' in shown) throw headlessFailed(spec, shown.failed);
      const waitsForCode = headless.kind !== 'device_code';
      this.move(
        id,
        'awaiting_user_auth',
        waitsForCode
          ? 'the login printed its authorize URL and waits for the code'
          : 'the login printed its URL and one-time code',
        { authorizeUrl: shown.url, userCode: shown.userCode, awaitingCode: waitsForCode },
      );

      const ended = await live.waitForEnd(signal);
      if (ended.failed !== null) throw headlessFailed(spec, ended.failed);
      if (headless.kind === 'print_token') {
        throw new FiredeckError(
          'auth_failed',
          `${spec.label}'s setup-token printed a token; Firedeck does not keep it (a CLI that saves nothing has no credential file to check)`,
          { hint: 'Use the browser login for Claude Code: it saves ~/.claude/.credentials.json, which is checked.' },
        );
      }
      if (this.deps.store.get(id).state === 'awaiting_user_auth') {
        this.move(id, 'authenticating', 'the login ended; checking its credential in the CLI VM', {
          awaitingCode: false,
        });
      }
      const result = await verifyCredentialInPlace({ target, provider: spec.name, signal });
      this.move(id, 'completed', `${spec.label} logged in in ${cli.name}; verified (${result.verifiedBy})`, {
        result: sessionResult(cli, result),
      });
    } catch (err) {
      // The login's processes end before the session's end is announced: an ended session runs nothing.
      await this.endHeadless(id, login);
      login = null;
      this.end(id, err, signal);
    } finally {
      await this.endHeadless(id, login);
    }
  }

  private async endHeadless(id: string, login: HeadlessLogin | null): Promise<void> {
    this.headless.delete(id);
    if (login !== null) {
      await login.kill().catch((err: unknown) => this.deps.log(`auth ${id}: ending the login: ${String(err)}`));
    }
  }

  /** The CLI VM's sshd, once it announced itself (a new VM boots meanwhile). */
  private async sshTarget(cliVmId: string, timeoutSeconds: number, signal: AbortSignal): Promise<GuestSshTarget> {
    let vm = this.deps.vms.get(cliVmId);
    if (vm.state === 'stopped') {
      throw new FiredeckError('invalid_state', `The CLI VM ${vm.name} is stopped; a headless login runs in it`, {
        hint: `Start it (firedeckd vm start ${vm.id}), then retry.`,
      });
    }
    if (!vm.ready.includes('sshd')) vm = await this.deps.vms.waitReady(cliVmId, 'sshd', timeoutSeconds, signal);
    if (!vm.address || !vm.hostKey) {
      throw new FiredeckError('invalid_state', `The CLI VM ${vm.name} has not announced its address and SSH host key`);
    }
    return { vmName: vm.name, address: vm.address, hostKey: vm.hostKey, keyDir: this.deps.vms.guestKeyDir() };
  }

  private headlessPendingSeconds(): number {
    return this.deps.config.timeouts.vm_created + this.deps.config.timeouts.ready;
  }

  /** The user's CLI VM: the live one they own, else a new one from the cli image (booting while we go on). */
  private async ensureCliVm(user: string, signal: AbortSignal): Promise<Vm> {
    const mine = this.deps.vms
      .list()
      .filter((v) => v.kind === 'cli' && v.owner === user && v.state !== 'destroying' && v.state !== 'destroyed');
    const existing = mine.find((v) => v.state !== 'crashed') ?? mine[0];
    if (existing) {
      if (existing.state === 'crashed') {
        throw new FiredeckError('invalid_state', `The CLI VM ${existing.name} of ${user} has crashed`, {
          hint: `Start it again (firedeckd vm start ${existing.id}) or look at its console, then retry.`,
        });
      }
      return existing;
    }
    this.checkSignal(signal);
    const vm = await this.deps.vms.create({
      name: cliVmName(user),
      kind: 'cli',
      owner: user,
      image: this.deps.config.cliImage,
      start: true,
    });
    this.deps.log(`auth: created CLI VM ${vm.name} (${vm.id}) for ${user}`);
    return vm;
  }

  private async writeIntoCliVm(
    id: string,
    cliVmId: string,
    spec: ProviderSpec,
    credentialId: string,
    signal: AbortSignal,
  ): Promise<TransferResult> {
    let vm = this.deps.vms.get(cliVmId);
    if (vm.state === 'creating' || vm.state === 'booting') {
      vm = await this.deps.vms.waitReady(cliVmId, 'sshd', this.beyondDeadline('authenticating'), signal);
    }
    const secret = this.deps.vault.open(credentialId);
    const payload = fromVaulted(spec, secret);
    secret.wipe();
    try {
      if (vm.state === 'running') {
        if (!vm.ready.includes('sshd'))
          vm = await this.deps.vms.waitReady(cliVmId, 'sshd', this.beyondDeadline('authenticating'), signal);
        if (!vm.address || !vm.hostKey) {
          throw new FiredeckError(
            'invalid_state',
            `The CLI VM ${vm.name} has not announced its address and SSH host key`,
          );
        }
        this.deps.log(`auth ${id}: writing into running ${vm.name} over its sshd`);
        return await this.deps.writer.online(
          { vmName: vm.name, address: vm.address, hostKey: vm.hostKey, keyDir: this.deps.vms.guestKeyDir() },
          payload,
        );
      }
      if (vm.state === 'stopped') {
        this.deps.log(`auth ${id}: writing into stopped ${vm.name}'s disk`);
        return await this.deps.writer.offline(cliVmId, payload);
      }
      throw new FiredeckError('invalid_state', `The CLI VM ${vm.name} is ${vm.state}; the credential stays vaulted`, {
        hint: 'Start or stop it, then retry the session.',
      });
    } finally {
      for (const f of payload.files) f.content.wipe();
    }
  }

  private vault(id: string, user: string, provider: ProviderName, payload: CredentialPayload): string {
    const blob = Buffer.from(
      JSON.stringify({
        files: payload.files.map((f) => ({
          path: f.path,
          mode: f.mode,
          contentBase64: f.content.bytes().toString('base64'),
        })),
      }),
      'utf8',
    );
    try {
      return this.deps.vault.put({ owner: user, provider, plaintext: Secret.adopt(blob), sessionId: id }).id;
    } finally {
      blob.fill(0);
      for (const f of payload.files) f.content.wipe();
    }
  }

  /** Ends a run that threw: cancelled (already recorded), timed out, or failed with the error's words. */
  private end(id: string, err: unknown, signal: AbortSignal): void {
    const current = this.deps.store.get(id);
    if (current.state === 'cancelled' || current.state === 'completed') return;
    const reason = signal.aborted ? signal.reason : err;
    if (reason instanceof Stopped && reason.how === 'timeout') {
      this.move(id, 'timeout', `${current.state} took longer than ${this.timeoutOf(current.state)} s`, {
        error: {
          kind: 'timeout',
          message: `The session timed out while ${current.state}`,
          hint: 'Retry the session; raise auth-timeouts in firedeckd.conf if the host is slow.',
        },
      });
      return;
    }
    const e = FiredeckError.from(reason instanceof Stopped ? err : reason);
    this.deps.log(`auth ${id}: failed in ${current.state}: ${e.kind}: ${e.message}`);
    try {
      this.move(id, 'failed', e.message, {
        error: { kind: e.kind, message: e.message, ...(e.hint !== undefined ? { hint: e.hint } : {}) },
      });
    } catch (moveErr) {
      this.deps.log(`auth ${id}: could not record the failure: ${String(moveErr)}`);
    }
  }

  private move(id: string, to: AuthSessionState, reason: string, patch: Parameters<AuthStore['update']>[1] = {}): void {
    const live = to !== 'completed' && to !== 'failed' && to !== 'timeout' && to !== 'cancelled';
    const session = this.deps.store.transition(
      id,
      to,
      { reason, actor: DAEMON_ACTOR },
      {
        ...patch,
        ...(live ? { deadline: this.deadlineFor(to as keyof AuthTimeouts) } : {}),
      },
    );
    if (live) this.armDeadline(id, to as keyof AuthTimeouts);
    this.announce(session);
  }

  private update(id: string, patch: Parameters<AuthStore['update']>[1]): void {
    this.announce(this.deps.store.update(id, patch));
  }

  private announce(session: AuthSession): void {
    this.deps.emit({ type: 'auth.session', session });
  }

  private armDeadline(id: string, state: keyof AuthTimeouts, seconds = this.timeoutOf(state)): void {
    const run = this.running.get(id);
    if (!run) return;
    if (run.timer) clearTimeout(run.timer);
    run.timer = setTimeout(() => run.controller.abort(new Stopped('timeout')), seconds * 1000);
    run.timer.unref();
  }

  /** A waiter's own timeout: past the state's deadline, so that the deadline (a `timeout` end) always fires first. */
  private beyondDeadline(state: keyof AuthTimeouts): number {
    return this.deps.config.timeouts[state] + 60;
  }

  private timeoutOf(state: AuthSessionState): number {
    return (this.deps.config.timeouts as Record<string, number>)[state] ?? 0;
  }

  private deadlineFor(state: keyof AuthTimeouts): string {
    return new Date(Date.now() + this.deps.config.timeouts[state] * 1000).toISOString();
  }

  private checkSignal(signal: AbortSignal): void {
    if (signal.aborted) throw signal.reason instanceof Error ? signal.reason : new Error('aborted');
  }

  private agentOf(vmId: string): AgentClient {
    const vm = this.deps.vms.get(vmId);
    const secrets = this.deps.vms.guestSecrets(vmId);
    if (!vm.address || !secrets)
      throw new FiredeckError('internal', `Browser VM ${vm.name} has no address or agent token`);
    return this.deps.agentFor
      ? this.deps.agentFor(vm, secrets.agentToken)
      : new AgentClient({ vmName: vm.name, address: vm.address, token: secrets.agentToken });
  }

  private async destroyBrowserVm(vmId: string, sessionId: string): Promise<void> {
    try {
      const vm = this.deps.vms.get(vmId);
      if (vm.state === 'destroyed') return;
      await this.deps.vms.destroy(vmId);
      this.deps.log(`auth ${sessionId}: browser VM ${vm.name} destroyed`);
    } catch (err) {
      // The reaper destroys it at its expiry if this failed (e.g. a concurrent destroy).
      this.deps.log(`auth ${sessionId}: could not destroy browser VM ${vmId}: ${String(err)}`);
    }
  }
}

/** What a completed session names: the CLI VM, the credential's path and hash, how it got there and was checked. */
function sessionResult(cli: Vm, result: TransferResult): NonNullable<AuthSession['result']> {
  return {
    cliVmId: cli.id,
    cliVmName: cli.name,
    path: result.files[0]!.path,
    sha256: result.files[0]!.sha256,
    transfer: result.mode,
    verifiedBy: result.verifiedBy,
    writtenAt: new Date().toISOString(),
  };
}

/** A headless login's failure, in the CLI's own words (scrubbed of a pasted code). */
function headlessFailed(spec: ProviderSpec, said: string): FiredeckError {
  return new FiredeckError('auth_failed', `${spec.label}'s login failed: ${said}`, {
    hint: 'Retry the session once the CLI VM reaches the provider; the CLI VM console shows its network.',
  });
}

/** The failure a login's end means, in the CLI's own words where it said any. */
function loginFailed(spec: ProviderSpec, status: AgentStatus): FiredeckError {
  const said = status.error?.trim();
  return new FiredeckError(
    'auth_failed',
    said
      ? `${spec.label}'s login failed: ${said}`
      : `${spec.label}'s login ended (${status.state}) without a credential`,
    { hint: 'Retry the session; if it fails again, read the browser VM console in the session history.' },
  );
}

/** The captured files checked against the provider's table (paths, shapes, sizes), in the table's order. */
function toPayload(spec: ProviderSpec, provider: ProviderName, files: AgentFile[]): CredentialPayload {
  try {
    if (provider !== spec.name) {
      throw new FiredeckError('invalid_state', `The agent answered a ${provider} credential for a ${spec.name} login`);
    }
    const payload: CredentialPayload = { provider, files };
    // Checked once as it leaves the guest (paths from the table, shapes, sizes), before anything keeps it.
    validatePayload(payload);
    return payload;
  } catch (err) {
    for (const f of files) f.content.wipe();
    throw err;
  }
}

function fromVaulted(spec: ProviderSpec, secret: Secret): CredentialPayload {
  const parsed = JSON.parse(secret.text()) as { files: { path: string; mode: number; contentBase64: string }[] };
  const files = parsed.files.map((f) => {
    const bytes = Buffer.from(f.contentBase64, 'base64');
    const content = Secret.from(bytes);
    bytes.fill(0);
    return { path: f.path, mode: f.mode, content };
  });
  return { provider: spec.name, files };
}

/** `auth-<session hex>`: a browser VM's name says which session it serves. */
export function browserVmName(sessionId: string): string {
  return `auth-${sessionId.slice('auth-'.length, 'auth-'.length + 12)}`;
}

/** `cli-<user>`, in the characters a VM name allows, with a hash of the user id so that two users never collide. */
export function cliVmName(user: string): string {
  const slug = user
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 40);
  const hash = createHash('sha256').update(user).digest('hex').slice(0, 6);
  return `cli-${slug ? `${slug}-` : ''}${hash}`;
}
