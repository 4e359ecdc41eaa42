import os from 'node:os';
import type { z } from 'zod';
import { FiredeckError, toAppError } from '../../shared/errors';
import {
  LOCAL_HOST_ID,
  appCalls,
  isAppCallName,
  type AppCallName,
  type AppCalls,
  type AppError,
  type AppEnvelope,
  type AppEvent,
  type AppResult,
  type Host,
  type HostStatus,
  type ChannelOpenParams,
} from '../../shared/app/contract';
import type { HostCommand } from '../../shared/protocol/hostCommand';
import { FIREDECK_VERSION } from '../../shared/version';
import { ChannelBroker } from '../channels/channelBroker';
import { HostConnection, type Backoff } from '../hosts/hostConnection';
import type { HostRegistry } from '../hosts/hostRegistry';
import type { PinnedHostKey } from '../ssh/hostKey';
import { LocalTransport } from '../ssh/localTransport';
import { SshConnectError, SshTransport } from '../ssh/sshTransport';
import type { Transport } from '../ssh/transport';

/** Who made a call: one Electron window or one web-mode socket; channel output goes back only to it. */
export interface CallContext {
  sessionId: string;
  emit(event: AppEvent): void;
  /**
   * Where output and the end of a channel this session opens go. Without one they are `channel.*` events
   * through `emit` (base64, as web mode's WebSocket carries them); Electron gives each channel a MessagePort.
   */
  channelOutput?: ChannelOutput;
}

export interface ChannelOutput {
  data(channelId: string, chunk: Uint8Array): void;
  closed(channelId: string, error: AppError | null): void;
}

export type AppHandlers = {
  [N in AppCallName]: (
    params: z.output<AppCalls[N]['params']>,
    ctx: CallContext,
  ) => Promise<AppResult<N>> | AppResult<N>;
};

export interface AppServiceOptions {
  mode: 'electron' | 'web';
  registry: HostRegistry;
  /** How to run the local firedeckd for the embedded default host; null hides that host. */
  localDaemonCommand: string | null;
  /** How to run firedeckd on SSH hosts (default `firedeckd`). */
  remoteDaemonCommand?: string;
  keepaliveIntervalMs?: number;
  backoff?: Backoff;
}

/** The main process's services behind the renderer contract; no Electron here, so web mode serves it too. */
export class AppService {
  private readonly connections = new Map<string, HostConnection>();
  /** The key each host presented on its last refused first connect, for the operator to confirm. */
  private readonly presentedKeys = new Map<string, PinnedHostKey>();
  private readonly broadcastListeners = new Set<(event: AppEvent) => void>();
  private readonly channels = new ChannelBroker();
  readonly handlers: AppHandlers;

  constructor(private readonly options: AppServiceOptions) {
    this.handlers = {
      'app.info': () => ({ mode: options.mode, version: FIREDECK_VERSION }),
      'hosts.list': () => this.listHosts(),
      'hosts.add': (input) => {
        const host = options.registry.add(input);
        this.broadcast({ type: 'hosts.changed' });
        return publicHost(host);
      },
      'hosts.update': ({ hostId, host }) => {
        this.requireSshHost(hostId);
        this.connections.get(hostId)?.disconnect();
        this.connections.delete(hostId);
        // A key shown before the edit belongs to the old endpoint: it must be presented again to be trusted.
        this.presentedKeys.delete(hostId);
        const updated = options.registry.update(hostId, host);
        this.broadcast({ type: 'hosts.changed' });
        return publicHost(updated);
      },
      'hosts.remove': ({ hostId }) => {
        this.requireSshHost(hostId);
        this.connections.get(hostId)?.disconnect();
        this.connections.delete(hostId);
        this.presentedKeys.delete(hostId);
        options.registry.remove(hostId);
        this.broadcast({ type: 'hosts.changed' });
        return { ok: true as const };
      },
      'hosts.statuses': () => this.listHosts().map((h) => this.connection(h.id).status),
      'hosts.connect': ({ hostId }) => this.connect(hostId),
      'hosts.trustHostKey': ({ hostId, fingerprint }) => {
        this.requireSshHost(hostId);
        const presented = this.presentedKeys.get(hostId);
        if (!presented || presented.fingerprint !== fingerprint) {
          throw new FiredeckError('invalid_state', `The host did not present ${fingerprint} on the last connect`, {
            hint: 'Connect again and compare the fingerprint shown then.',
          });
        }
        const host = options.registry.get(hostId);
        if (host.pinnedKey) {
          throw new FiredeckError('host_key_mismatch', `A different host key is already pinned for ${host.name}`, {
            hint: 'Remove the host and add it again if its key really changed.',
          });
        }
        options.registry.pinHostKey(hostId, presented);
        this.presentedKeys.delete(hostId);
        this.broadcast({ type: 'hosts.changed' });
        return this.connect(hostId);
      },
      'hosts.disconnect': ({ hostId }) => this.connection(hostId).disconnect(),
      'hosts.connectAll': () => this.connectAll(),
      'daemon.call': ({ hostId, method, params }) => this.connection(hostId).call(method, params ?? {}),
      'channels.open': (params, ctx) => this.openChannel(params, ctx),
      'channels.ack': ({ channelId, bytes }, ctx) => {
        this.channels.ack(ctx.sessionId, channelId, bytes);
        return null;
      },
      'channels.write': ({ channelId, data, encoding }, ctx) => {
        this.channels.write(ctx.sessionId, channelId, Buffer.from(data, encoding));
        return null;
      },
      'channels.resize': ({ channelId, cols, rows }, ctx) => {
        this.channels.resize(ctx.sessionId, channelId, cols, rows);
        return null;
      },
      'channels.close': ({ channelId }, ctx) => {
        this.channels.close(ctx.sessionId, channelId);
        return null;
      },
    };
  }

  /** Events for every session: connection states, host list changes, daemon events. */
  onBroadcast(listener: (event: AppEvent) => void): () => void {
    this.broadcastListeners.add(listener);
    return () => this.broadcastListeners.delete(listener);
  }

  /**
   * At start: connects the embedded local host and every saved host whose key the operator has trusted, all in
   * parallel; failures show in each host's status, never as a throw.
   */
  connectAtStart(): void {
    const trusted = this.listHosts().filter((h) => h.kind === 'local' || h.hostKeyFingerprint !== null);
    void this.connectAll(trusted);
  }

  /**
   * Connects every host in parallel: each attempt runs on its own, so a host that is slow to answer or refuses
   * neither delays nor fails the others. Resolves with every host's status once all attempts have settled.
   */
  async connectAll(hosts: readonly Host[] = this.listHosts()): Promise<HostStatus[]> {
    await Promise.allSettled(hosts.map((h) => this.connect(h.id)));
    return hosts.map((h) => this.connection(h.id).status);
  }

  endSession(sessionId: string): void {
    this.channels.closeOwnedBy(sessionId);
  }

  shutdown(): void {
    this.channels.closeAll();
    for (const c of this.connections.values()) c.disconnect();
    this.connections.clear();
  }

  /**
   * Validates the params (the renderer is not trusted), runs and wraps one call; never throws, so every outcome
   * crosses the boundary whole. Results are main's own, typed by the handlers: the renderer trusts them as they are.
   */
  async dispatch(name: unknown, params: unknown, ctx: CallContext): Promise<AppEnvelope<unknown>> {
    try {
      if (!isAppCallName(name))
        throw new FiredeckError('method_not_found', `Unknown call ${String(name).slice(0, 64)}`);
      const def = appCalls[name];
      const parsed = def.params.safeParse(params ?? {});
      if (!parsed.success) {
        throw new FiredeckError(
          'invalid_params',
          `Invalid params for ${name}: ${parsed.error.issues[0]?.message ?? 'invalid'}`,
        );
      }
      const handler = this.handlers[name] as (p: unknown, c: CallContext) => Promise<unknown> | unknown;
      const value = await handler(parsed.data, ctx);
      return { ok: true, value };
    } catch (err) {
      return { ok: false, error: toAppError(err) };
    }
  }

  private listHosts(): Host[] {
    const stored = this.options.registry.list().map(publicHost);
    return this.options.localDaemonCommand === null ? stored : [localHost(), ...stored];
  }

  private requireSshHost(hostId: string): void {
    if (hostId === LOCAL_HOST_ID) {
      throw new FiredeckError('invalid_params', 'The embedded local host cannot be changed or trusted');
    }
  }

  private async connect(hostId: string): Promise<HostStatus> {
    return this.connection(hostId).connect();
  }

  private connection(hostId: string): HostConnection {
    const existing = this.connections.get(hostId);
    if (existing) return existing;
    let open: () => Promise<Transport>;
    let daemonCommand: string;
    if (hostId === LOCAL_HOST_ID) {
      if (this.options.localDaemonCommand === null) throw new FiredeckError('not_found', 'No local host is configured');
      daemonCommand = this.options.localDaemonCommand;
      open = () => Promise.resolve(new LocalTransport());
    } else {
      this.options.registry.get(hostId); // not_found for unknown ids, before anything is created
      daemonCommand = this.options.remoteDaemonCommand ?? 'firedeckd';
      open = () => this.openSsh(hostId);
    }
    const conn = new HostConnection({
      hostId,
      openTransport: open,
      daemonCommand,
      onStatus: (status) => this.broadcast({ type: 'host.status', status }),
      onEvent: (envelope) => this.broadcast({ type: 'daemon.event', hostId, envelope }),
      ...(this.options.backoff ? { backoff: this.options.backoff } : {}),
    });
    this.connections.set(hostId, conn);
    return conn;
  }

  private async openSsh(hostId: string): Promise<Transport> {
    // Read the pin on every attempt: trust may have been granted since the connection object was made.
    const host = this.options.registry.get(hostId);
    try {
      return await SshTransport.connect({
        address: host.address,
        port: host.port,
        user: host.user,
        auth: host.auth,
        pinned: host.pinnedKey,
        ...(this.options.keepaliveIntervalMs ? { keepaliveIntervalMs: this.options.keepaliveIntervalMs } : {}),
      });
    } catch (err) {
      if (err instanceof SshConnectError && err.refusedKey?.verdict === 'unknown') {
        this.presentedKeys.set(hostId, err.refusedKey.presented);
      }
      throw err;
    }
  }

  private async openChannel(params: ChannelOpenParams, ctx: CallContext): Promise<{ channelId: string }> {
    const command: HostCommand =
      params.kind === 'console'
        ? { name: 'console', vm: params.vmId, lines: null, follow: params.follow !== false, attach: false }
        : params.kind === 'shell'
          ? { name: 'shell', vm: params.vmId, command: [] }
          : { name: 'vnc', vm: params.vmId };
    const size = { cols: params.cols ?? 80, rows: params.rows ?? 24 };
    const exec = await this.connection(params.hostId).execDaemon(command, params.kind === 'shell' ? { pty: size } : {});
    const out = ctx.channelOutput;
    const channelId = this.channels.open(ctx.sessionId, exec, command.name, {
      data: (id, chunk) =>
        out ? out.data(id, chunk) : ctx.emit({ type: 'channel.data', channelId: id, data: chunk.toString('base64') }),
      closed: (id, error) => {
        const reason = error ? toAppError(error) : null;
        if (out) out.closed(id, reason);
        else ctx.emit({ type: 'channel.closed', channelId: id, error: reason });
      },
    });
    return { channelId };
  }

  private broadcast(event: AppEvent): void {
    for (const l of this.broadcastListeners) l(event);
  }
}

function publicHost(host: Host & { pinnedKey?: unknown }): Host {
  const { pinnedKey: _pinned, ...rest } = host;
  return rest;
}

function localHost(): Host {
  return {
    id: LOCAL_HOST_ID,
    name: 'local',
    kind: 'local',
    address: os.hostname(),
    port: 0,
    user: os.userInfo().username,
    auth: null,
    hostKeyFingerprint: null,
  };
}
