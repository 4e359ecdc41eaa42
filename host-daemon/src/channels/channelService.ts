import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { z } from 'zod';
import { FiredeckError } from '../../../src/shared/errors';
import { CHANNEL_OPEN_METHOD, ChannelOpenParams, type ChannelOpenResult } from '../../../src/shared/protocol/channel';
import type { Vm } from '../../../src/shared/protocol/vm';
import { connectGuest, openGuestSession } from '../guest/guestSsh';
import { runRfbProxy } from '../vnc/rfbProxy';
import { encodeFrame } from '../../../src/shared/rpc/framing';
import { failureFrame, successFrame } from '../../../src/shared/rpc/jsonrpc';
import type { CallRecord, Caller } from '../rpc/server';
import { ChannelLink } from './channelLink';

/** What channels need of the VM service. */
export interface ChannelVms {
  list(): Vm[];
  get(id: string): Vm;
  consoleTail(id: string, lines: number): { lines: string[]; truncated: boolean };
  /** Live console bytes; `onEnd` when the console stops (the VM ended). Throws when there is no live console. */
  followConsole(id: string, listener: (chunk: Buffer) => void, onEnd?: () => void): () => void;
  writeConsole(id: string, data: Buffer): void;
  waitReady(id: string, marker: string, timeoutSeconds: number): Promise<Vm>;
  vmStateDir(id: string): string;
  guestKeyDir(): string;
}

/** The browser image's Xvnc port (images/browser/files/firedeck-vnc.service). */
export const GUEST_VNC_PORT = 5900;

const SecretsFile = z.object({ vncPassword: z.string().min(1).max(64) });

/** The VM's VNC password from `<vm state dir>/secrets.json` (0600, written by VmService at create). */
export function readVncPassword(vmStateDir: string, vmName: string): string {
  let text: string;
  try {
    text = fs.readFileSync(path.join(vmStateDir, 'secrets.json'), 'utf8');
  } catch {
    throw new FiredeckError('invalid_state', `VM ${vmName} has no VNC password`, {
      hint: 'Only browser VMs created by firedeckd have one; recreate the VM.',
    });
  }
  try {
    return SecretsFile.parse(JSON.parse(text)).vncPassword;
  } catch {
    throw new FiredeckError('invalid_state', `The secrets file of ${vmName} holds no valid VNC password`);
  }
}

type Session = (link: ChannelLink) => Promise<void>;

/** One `channel.open` for the audit log: who asked, for which VM and kind, and whether it opened. */
export type ChannelAuditRecord = Omit<CallRecord, 'method' | 'params'> & {
  method: typeof CHANNEL_OPEN_METHOD;
  params: ChannelAuditParams;
};

/**
 * What the audit log keeps of a `channel.open`: never a secret, and not a shell's command line (it may carry
 * anything), only whether there was one.
 */
export interface ChannelAuditParams {
  kind: string | null;
  /** The VM as the caller named it. */
  vm: string | null;
  vmId: string | null;
  command?: boolean;
  pty?: boolean;
  follow?: boolean;
  attach?: boolean;
}

const KINDS = new Set(['console', 'shell', 'vnc']);

function auditParams(raw: unknown, result: ChannelOpenResult | null): ChannelAuditParams {
  const p = typeof raw === 'object' && raw !== null ? (raw as Record<string, unknown>) : {};
  const out: ChannelAuditParams = {
    kind: typeof p.kind === 'string' && KINDS.has(p.kind) ? p.kind : null,
    vm: typeof p.vm === 'string' && /^[A-Za-z0-9._-]{1,128}$/.test(p.vm) ? p.vm : null,
    vmId: result?.vmId ?? null,
  };
  if (out.kind === 'shell') {
    out.command = typeof p.command === 'string';
    out.pty = typeof p.pty === 'object' && p.pty !== null;
  } else if (out.kind === 'console') {
    out.follow = p.follow === true;
    out.attach = p.attach === true;
  }
  return out;
}

/**
 * Opens console, shell and VNC streams for clients of the daemon's socket (`channel.open`). The daemon is the
 * one that reads the console log, holds the guest key and the VNC passwords; a client gets bytes only.
 */
export class ChannelService {
  constructor(
    private readonly vms: ChannelVms,
    private readonly log?: (line: string) => void,
    /** Called for every `channel.open`, refused or not (the audit log). */
    private readonly audit?: (record: ChannelAuditRecord) => void,
  ) {}

  /**
   * Checks the request and everything that can be checked at once; the returned session then runs on the
   * connection. Throws typed errors, which become the `channel.open` failure.
   */
  prepare(rawParams: unknown): { result: ChannelOpenResult; run: Session } {
    const parsed = ChannelOpenParams.safeParse(rawParams ?? {});
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      throw new FiredeckError(
        'invalid_params',
        `Invalid params for channel.open: ${issue ? `${issue.path.join('.') || '(params)'}: ${issue.message}` : ''}`,
      );
    }
    const params = parsed.data;
    const vm = this.resolve(params.vm);
    const result: ChannelOpenResult = { vmId: vm.id, vmName: vm.name, kind: params.kind };
    switch (params.kind) {
      case 'console':
        return { result, run: (link) => this.console(vm, params, link) };
      case 'shell':
        return { result, run: this.shell(vm, params) };
      case 'vnc':
        return { result, run: this.vnc(vm) };
    }
  }

  /** The daemon socket's `channel.open` (RpcServer.registerChannelOpener): reply, then the session's frames. */
  open(socket: net.Socket, id: string | number, params: unknown, caller: Caller): void {
    let prepared: { result: ChannelOpenResult; run: Session };
    try {
      prepared = this.prepare(params);
    } catch (err) {
      const error = FiredeckError.from(err);
      this.record(caller, params, null, error);
      socket.end(encodeFrame(failureFrame(id, error)));
      return;
    }
    this.record(caller, params, prepared.result, null);
    this.log?.(
      `channel ${prepared.result.kind} to ${prepared.result.vmId} opened by ${caller.user} (uid ${caller.uid ?? '?'})`,
    );
    socket.write(encodeFrame(successFrame(id, prepared.result)));
    void this.serve(socket, prepared.run);
  }

  private record(caller: Caller, params: unknown, result: ChannelOpenResult | null, error: FiredeckError | null): void {
    try {
      this.audit?.({ method: CHANNEL_OPEN_METHOD, caller, params: auditParams(params, result), ok: !error, error });
    } catch (err) {
      this.log?.(`audit: could not record ${CHANNEL_OPEN_METHOD}: ${String(err)}`);
    }
  }

  /** Runs a prepared session to its end: the last frame is `exit`, with the error if it failed. */
  async serve(socket: net.Socket, run: Session): Promise<void> {
    const link = new ChannelLink(socket);
    try {
      await run(link);
      link.exit(0);
    } catch (err) {
      link.exit(null, null, FiredeckError.from(err));
    }
  }

  private resolve(ref: string): Vm {
    if (/^vm-[0-9a-f]{8,32}$/.test(ref)) return this.vms.get(ref);
    const match = this.vms.list().find((v) => v.name === ref);
    if (!match) throw new FiredeckError('not_found', `No VM named ${ref}`, { hint: 'List them with: firedeckd vm ls' });
    return match;
  }

  private async console(
    vm: Vm,
    params: { lines: number; follow: boolean; attach: boolean },
    link: ChannelLink,
  ): Promise<void> {
    // Tail and subscription in one turn of the event loop: no console byte is lost or sent twice between them.
    const tail = this.vms.consoleTail(vm.id, params.lines);
    const live = params.follow || params.attach;
    let ended: Promise<void> | null = null;
    let unfollow: (() => void) | null = null;
    if (live) {
      if (vm.state !== 'booting' && vm.state !== 'running' && vm.state !== 'stopping') {
        link.output.write(tail.lines.map((l) => l + '\n').join(''));
        throw new FiredeckError('invalid_state', `VM ${vm.name} is ${vm.state}: nothing to follow`);
      }
      ended = new Promise<void>((resolve) => {
        unfollow = this.vms.followConsole(vm.id, (chunk) => link.sendOrDrop(chunk), resolve);
        link.onClose(resolve);
      });
    }
    const history = tail.lines.map((l) => l + '\n').join('');
    if (history.length > 0) link.output.write(history);
    if (!ended) return;
    link.live();
    if (params.attach) link.input.on('data', (data: Buffer) => this.vms.writeConsole(vm.id, data));
    try {
      await ended;
    } finally {
      (unfollow as (() => void) | null)?.();
    }
  }

  private shell(
    vm: Vm,
    params: { command: string | null; pty: { cols: number; rows: number; term: string } | null },
  ): Session {
    if (vm.kind !== 'cli') {
      throw new FiredeckError('invalid_params', `VM ${vm.name} is a ${vm.kind} VM; shells are for CLI VMs`);
    }
    if (vm.state !== 'running' || vm.address === null) {
      throw new FiredeckError('invalid_state', `VM ${vm.name} is ${vm.state}; a shell needs it running`);
    }
    if (!vm.hostKey) {
      throw new FiredeckError('unavailable', `VM ${vm.name} has not announced its SSH host key yet`, {
        hint: 'Wait for it: firedeckd vm start --wait, or watch firedeckd console.',
      });
    }
    const address = vm.address;
    const hostKey = vm.hostKey;
    return async (link) => {
      if (!vm.ready.includes('sshd')) await this.vms.waitReady(vm.id, 'sshd', 120);
      const client = await connectGuest({ vmName: vm.name, address, hostKey, keyDir: this.vms.guestKeyDir() });
      try {
        if (link.isClosed) return;
        const channel = await openGuestSession(client, params.command, params.pty);
        await new Promise<void>((resolve) => {
          let code: number | null = null;
          let signal: string | null = null;
          channel.on('exit', (c: number | null, s?: string) => {
            code = c;
            signal = s ?? null;
          });
          link.onResize((cols, rows) => channel.setWindow(rows, cols, 0, 0));
          link.input.pipe(channel);
          channel.pipe(link.output, { end: false });
          channel.stderr.pipe(link.stderr, { end: false });
          // Detach: the client went away; the guest's session ends, the VM runs on.
          link.onClose(() => {
            channel.close();
            resolve();
          });
          channel.once('close', () => {
            link.exit(code, signal);
            resolve();
          });
        });
      } finally {
        client.end();
      }
    };
  }

  private vnc(vm: Vm): Session {
    if (vm.kind !== 'browser') {
      throw new FiredeckError('invalid_params', `VM ${vm.name} is a ${vm.kind} VM; only browser VMs have a desktop`);
    }
    if (vm.state !== 'running' || vm.address === null) {
      throw new FiredeckError('invalid_state', `VM ${vm.name} is ${vm.state}; its desktop needs it running`, {
        hint: `Start it with: firedeckd vm start ${vm.name}`,
      });
    }
    const password = readVncPassword(this.vms.vmStateDir(vm.id), vm.name);
    const address = vm.address;
    return async (link) => {
      if (!vm.ready.includes('vnc')) await this.vms.waitReady(vm.id, 'vnc', 300);
      const guest = await connectVnc(address, vm.name, 15_000);
      try {
        await runRfbProxy({ client: { input: link.input, output: link.output }, guest, password });
      } finally {
        guest.destroy();
      }
    };
  }
}

function connectVnc(address: string, vmName: string, timeoutMs: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: address, port: GUEST_VNC_PORT });
    socket.setNoDelay(true);
    const timer = setTimeout(() => {
      socket.destroy();
      reject(
        new FiredeckError('timeout', `No answer from the VNC server of ${vmName} at ${address}:${GUEST_VNC_PORT}`),
      );
    }, timeoutMs);
    socket.once('connect', () => {
      clearTimeout(timer);
      resolve(socket);
    });
    socket.once('error', (err) => {
      clearTimeout(timer);
      reject(
        new FiredeckError(
          'unavailable',
          `Cannot reach the VNC server of ${vmName} at ${address}:${GUEST_VNC_PORT}: ${err.message}`,
          { hint: `Is its desktop up? Watch for FIREDECK-READY vnc in: firedeckd console ${vmName}` },
        ),
      );
    });
  });
}
