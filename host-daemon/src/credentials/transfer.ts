import { randomBytes } from 'node:crypto';
import path from 'node:path';
import type { Client, ClientChannel } from 'ssh2';
import { FiredeckError } from '../../../src/shared/errors';
import { PROVIDERS, type ProviderSpec } from '../../../src/shared/protocol/providers';
import { connectGuest, type GuestSshTarget } from '../guest/guestSsh';
import type { GuestFile, OfflineDiskWriter } from './offlineDisk';
import { Secret } from './secret';
import {
  GUEST_GID,
  GUEST_HOME,
  GUEST_UID,
  MAX_MERGED_BYTES,
  mergeJsonCompanion,
  scrubOutput,
  validatePayload,
  type CredentialPayload,
  type PlannedGuestFile,
} from './transferPayload';

export type { CapturedFile, CredentialPayload } from './transferPayload';

/** How a credential reached the CLI VM and how it was checked there. */
export interface TransferResult {
  /** in_place: the CLI wrote it in the CLI VM itself (a headless login); it was only checked there. */
  mode: 'online' | 'offline' | 'in_place';
  /** Absolute guest paths (credential first) and the sha256 of what each holds now (merged, for a companion). */
  files: { path: string; sha256: string }[];
  /** 'status-check': hashes matched and the provider's own check passed; 'hash': the provider has no check. */
  verifiedBy: 'status-check' | 'hash';
}

/**
 * Points of an online transfer, for callers that report progress and for tests: `streaming` comes when half of a
 * file's bytes are handed to the channel, and the rest waits for the hook's promise.
 */
export type OnlineTransferPhase = 'connected' | 'streaming' | 'written' | 'status-check';

export interface OnlineTransferOptions {
  target: GuestSshTarget;
  payload: CredentialPayload;
  /** For the whole transfer, connection included (default 120 s); on expiry the connection is dropped. */
  timeoutMs?: number;
  /** Aborting drops the connection at once; the guest keeps the old file or the new one, never a part. */
  signal?: AbortSignal;
  onPhase?: (phase: OnlineTransferPhase, guestPath: string | null) => void | Promise<void>;
}

const DEFAULT_TIMEOUT_MS = 120_000;
const CHUNK = 64 * 1024;
const MAX_SCRIPT_OUTPUT = 64 * 1024;

/** Exit codes of the guest-side scripts (below 126, which a shell keeps for itself). */
const EXIT_ABSENT = 3;
const EXIT_INCOMPLETE = 64;
const EXIT_CHANGED = 65;
const EXIT_NOT_A_FILE = 66;

/**
 * Writes a captured credential into a running CLI VM over its sshd, as its user (`firedeck`), verified.
 *
 * Per file, one fixed POSIX sh script (paths from the provider table, shell-quoted; the content only on the
 * channel's stdin, never in argv or the environment): umask 077, the parent made 0700 if missing, the content
 * into a temporary file in the same directory, its sha256 checked against the host's (a stream cut short leaves
 * an incomplete temp, which is removed, and the target untouched), chmod 0600, fsync, rename over the target,
 * fsync of the directory; then the target's sha256 and mode are read back and compared on the host. A temp of an
 * interrupted transfer (the VM stopped mid-way) is removed by the next write of that file.
 *
 * Companions (merge 'json') are read first, all of them, and merged here (captured keys win, the others stay);
 * an unparsable current file stops the transfer before anything is written. A companion that changes between the
 * read and the rename is not overwritten (`conflict`). Last, the provider's status check runs as the user in a
 * login shell; a failure is an `invalid_state` error with its output, scrubbed of the credential's values.
 */
export async function writeCredentialOnline(o: OnlineTransferOptions): Promise<TransferResult> {
  const plan = validatePayload(o.payload);
  const vm = o.target.vmName;
  const deadline = new Deadline(o.timeoutMs ?? DEFAULT_TIMEOUT_MS, o.signal, vm);
  const onPhase = o.onPhase ?? (() => undefined);
  const merged: Secret[] = [];
  let client: Client | null = null;
  try {
    client = await deadline.race(connectGuest({ ...o.target, timeoutMs: deadline.remaining() }), (c) => c.end());
    const connected = client;
    // Errors after the handshake (a reset, our own destroy) end the channels, which report them; none may throw.
    connected.on('error', () => undefined);
    deadline.onExpire(() => connected.destroy());
    await deadline.race(Promise.resolve(onPhase('connected', null)));

    const writes: { file: PlannedGuestFile; content: Secret; previous: string | null }[] = [];
    for (const file of plan.files) {
      if (file.merge === null) {
        writes.push({ file, content: file.content, previous: null });
        continue;
      }
      const current = await deadline.race(readGuestFile(connected, file.guestPath, vm));
      // The write refuses to replace the file if it no longer has this hash (changed in the VM meanwhile).
      const previous = current === null ? 'absent' : current.sha256();
      let content: Secret;
      try {
        content = mergeJsonCompanion(current, file.content, file.guestPath);
      } finally {
        current?.wipe();
      }
      if (content !== file.content) merged.push(content);
      writes.push({ file, content, previous });
    }

    const written: TransferResult['files'] = [];
    for (const w of writes) {
      const sha256 = w.content.sha256();
      const back = await deadline.race(
        writeGuestFile(connected, w.file.guestPath, w.content, sha256, w.previous, vm, () =>
          onPhase('streaming', w.file.guestPath),
        ),
      );
      if (back.sha256 !== sha256) {
        throw new FiredeckError('integrity', `${w.file.guestPath} in VM ${vm} reads back with another sha256`, {
          hint: 'The VM’s disk or filesystem misbehaves; check it, then transfer again.',
        });
      }
      if (back.mode !== '600' || back.uid !== GUEST_UID || back.gid !== GUEST_GID) {
        throw new FiredeckError(
          'integrity',
          `${w.file.guestPath} in VM ${vm} has mode ${back.mode} and owner ${back.uid}:${back.gid} after the write`,
        );
      }
      written.push({ path: w.file.guestPath, sha256 });
      await deadline.race(Promise.resolve(onPhase('written', w.file.guestPath)));
    }

    const check = plan.spec.statusCheck;
    if (check !== null) await deadline.race(Promise.resolve(onPhase('status-check', null)));
    await runStatusCheck(connected, plan.spec, vm, deadline, [...plan.files.map((f) => f.content), ...merged], written);
    return { mode: 'online', files: written, verifiedBy: check === null ? 'hash' : 'status-check' };
  } finally {
    deadline.dispose();
    client?.end();
    for (const m of merged) m.wipe();
  }
}

export interface OfflineTransferOptions {
  writer: OfflineDiskWriter;
  /** The stopped CLI VM's raw ext4 root disk. */
  image: string;
  payload: CredentialPayload;
  /** The daemon's word that the VM is stopped (and stays so); the writer asks it before reading and writing. */
  vmStopped: () => boolean | Promise<boolean>;
}

/**
 * Writes a captured credential into a stopped CLI VM's disk with the offline writer (debugfs, all files or none,
 * verified by hash and `e2fsck -fn`); companions are merged into the disk's current copies as online. A running
 * VM's disk is refused by the writer's `vmStopped` check.
 */
export async function writeCredentialOffline(o: OfflineTransferOptions): Promise<TransferResult> {
  const plan = validatePayload(o.payload);
  const merged: Secret[] = [];
  const files: GuestFile[] = plan.files.map((f) => ({
    path: f.guestPath,
    uid: GUEST_UID,
    gid: GUEST_GID,
    mode: 0o600,
    content:
      f.merge === null
        ? f.content
        : (current: Secret | null): Secret => {
            try {
              const m = mergeJsonCompanion(current, f.content, f.guestPath);
              if (m !== f.content) merged.push(m);
              return m;
            } catch (err) {
              current?.wipe();
              throw err;
            }
          },
  }));
  try {
    const r = await o.writer.write({ image: o.image, files, dirMode: 0o700, vmStopped: o.vmStopped });
    return { mode: 'offline', files: r.files.map((f) => ({ path: f.path, sha256: f.sha256 })), verifiedBy: 'hash' };
  } finally {
    for (const m of merged) m.wipe();
  }
}

/**
 * Checks a credential a CLI wrote in the CLI VM itself (a headless login): the provider's credential file read
 * as the VM's user and checked like a captured one (a JSON object with the table's fields, names only, at most
 * 1 MiB), its sha256 taken, its mode 0600 made sure, then the provider's status check run. The content never
 * leaves this function.
 */
export async function verifyCredentialInPlace(o: {
  target: GuestSshTarget;
  provider: CredentialPayload['provider'];
  timeoutMs?: number;
  signal?: AbortSignal;
}): Promise<TransferResult> {
  const vm = o.target.vmName;
  const deadline = new Deadline(o.timeoutMs ?? DEFAULT_TIMEOUT_MS, o.signal, vm);
  let client: Client | null = null;
  let content: Secret | null = null;
  try {
    client = await deadline.race(connectGuest({ ...o.target, timeoutMs: deadline.remaining() }), (c) => c.end());
    const connected = client;
    connected.on('error', () => undefined);
    deadline.onExpire(() => connected.destroy());
    const spec = PROVIDERS[o.provider];
    const guestPath = `${GUEST_HOME}/${spec.credential.path}`;
    content = await deadline.race(readGuestFile(connected, guestPath, vm));
    if (content === null) {
      throw new FiredeckError('invalid_state', `The login ended but ${guestPath} is not in VM ${vm}`, {
        hint: `${spec.label} saved its login elsewhere (a keyring?) or not at all: start a new login.`,
      });
    }
    const plan = validatePayload({
      provider: o.provider,
      files: [{ path: spec.credential.path, content, mode: 0o600 }],
    });
    const sha256 = content.sha256();
    const chmod = await deadline.race(runGuest(connected, `chmod 600 ${shq(guestPath)}`, null));
    if (chmod.code !== 0) throw scriptFailed(`Making ${guestPath} 0600`, vm, chmod);
    await runStatusCheck(connected, plan.spec, vm, deadline, [content]);
    return {
      mode: 'in_place',
      files: [{ path: guestPath, sha256 }],
      verifiedBy: plan.spec.statusCheck === null ? 'hash' : 'status-check',
    };
  } finally {
    deadline.dispose();
    client?.end();
    content?.wipe();
  }
}

/** The provider's status check as the VM's user (none: nothing to run); a failure names its output, scrubbed. */
async function runStatusCheck(
  connected: Client,
  spec: ProviderSpec,
  vm: string,
  deadline: Deadline,
  secrets: readonly Secret[],
  written: TransferResult['files'] = [],
): Promise<void> {
  const check = spec.statusCheck;
  if (check === null) return;
  const r = await deadline.race(runGuest(connected, statusCommand(check), null));
  if (r.code !== 0) {
    const output = scrubOutput(`${r.stdout.toString('utf8')}${r.stderr}`.trim(), secrets);
    throw new FiredeckError(
      'invalid_state',
      `The ${spec.label} status check \`${check.join(' ')}\` failed in VM ${vm} (${exitText(r)}) after the credential was written`,
      {
        hint:
          r.code === 127
            ? `The VM has no \`${check[0]}\`: use a VM made from the current cli image.`
            : 'The CLI does not accept the credential (expired, revoked, or another account): start a new login.',
        details: { output, files: written.map((f) => f.path) },
      },
    );
  }
}

/** A file of the guest read as its user; null when it does not exist. */
async function readGuestFile(client: Client, guestPath: string, vm: string): Promise<Secret | null> {
  const script = [
    `f=${shq(guestPath)}`,
    `if [ -d "$f" ]; then exit ${EXIT_NOT_A_FILE}; fi`,
    `if [ ! -e "$f" ]; then exit ${EXIT_ABSENT}; fi`,
    'exec cat -- "$f"',
  ].join('\n');
  const r = await runGuest(client, script, null, MAX_MERGED_BYTES + 1);
  if (r.code === EXIT_ABSENT) return null;
  if (r.code === EXIT_NOT_A_FILE) throw notAFile(guestPath, vm);
  if (r.overflow) {
    r.stdout.fill(0);
    throw new FiredeckError('resource_exhausted', `${guestPath} in VM ${vm} is larger than 4 MiB; it was not merged`);
  }
  if (r.code !== 0) throw scriptFailed(`Reading ${guestPath}`, vm, r);
  return Secret.adopt(r.stdout);
}

interface ReadBack {
  sha256: string;
  mode: string;
  uid: number;
  gid: number;
}

async function writeGuestFile(
  client: Client,
  guestPath: string,
  content: Secret,
  sha256: string,
  previous: string | null,
  vm: string,
  onHalf: () => void | Promise<void>,
): Promise<ReadBack> {
  const dir = path.posix.dirname(guestPath);
  const base = path.posix.basename(guestPath);
  const tempPrefix = `.${base}.fdt-`;
  const temp = `${dir}/${tempPrefix}${randomBytes(6).toString('hex')}`;
  const script = [
    'set -eu',
    'umask 077',
    `f=${shq(guestPath)}`,
    `d=${shq(dir)}`,
    `t=${shq(temp)}`,
    `want=${sha256}`,
    '[ -d "$d" ] || mkdir -p -m 0700 -- "$d"',
    `if [ -d "$f" ]; then exit ${EXIT_NOT_A_FILE}; fi`,
    // Temps an interrupted transfer of this file left behind (a dot-name the CLI never reads).
    `rm -f -- "$d"/${shq(tempPrefix)}*`,
    'cat > "$t"',
    // A connection cut mid-stream is an EOF to cat: what arrived is incomplete, so it never replaces the file.
    'got=$(sha256sum < "$t")',
    `if [ "\${got%% *}" != "$want" ]; then rm -f -- "$t"; exit ${EXIT_INCOMPLETE}; fi`,
    'chmod 0600 -- "$t"',
    'sync -- "$t"',
    ...(previous === null
      ? []
      : previous === 'absent'
        ? [`if [ -e "$f" ]; then rm -f -- "$t"; exit ${EXIT_CHANGED}; fi`]
        : [
            `was=$(sha256sum < "$f") || { rm -f -- "$t"; exit ${EXIT_CHANGED}; }`,
            `if [ "\${was%% *}" != ${previous} ]; then rm -f -- "$t"; exit ${EXIT_CHANGED}; fi`,
          ]),
    'mv -f -T -- "$t" "$f"',
    'sync -- "$d"',
    'got=$(sha256sum < "$f")',
    'echo "sha256 ${got%% *}"',
    'echo "stat $(stat -c \'%a %u %g\' -- "$f")"',
  ].join('\n');
  const r = await runGuest(client, script, { content: content.bytes(), onHalf });
  if (r.code === EXIT_NOT_A_FILE) throw notAFile(guestPath, vm);
  if (r.code === EXIT_CHANGED) {
    throw new FiredeckError('conflict', `${guestPath} changed in VM ${vm} while it was merged; it was not written`, {
      hint: 'Something in the VM (the CLI?) rewrote it meanwhile: transfer the credential again.',
    });
  }
  if (r.code === EXIT_INCOMPLETE) {
    throw new FiredeckError('disconnected', `VM ${vm} received ${guestPath} incomplete; the old file was kept`, {
      hint: 'The connection to the VM broke off: transfer the credential again.',
    });
  }
  if (r.code !== 0) throw scriptFailed(`Writing ${guestPath}`, vm, r);
  const out = r.stdout.toString('utf8');
  const hash = /^sha256 ([0-9a-f]{64})$/m.exec(out);
  const stat = /^stat ([0-7]+) (\d+) (\d+)$/m.exec(out);
  if (hash === null || stat === null) throw scriptFailed(`Reading back ${guestPath}`, vm, r);
  return { sha256: hash[1]!, mode: stat[1]!, uid: Number(stat[2]), gid: Number(stat[3]) };
}

/** The status check as the user in a login shell at home; argv goes to `exec "$@"`, each word quoted. */
function statusCommand(argv: readonly string[]): string {
  return `export HOME=${shq(GUEST_HOME)}; cd "$HOME" && exec sh -lc 'exec "$@"' sh ${argv.map(shq).join(' ')}`;
}

interface GuestRun {
  code: number | null;
  signal: string | null;
  stdout: Buffer;
  stderr: string;
  overflow: boolean;
}

/**
 * Runs a command through the user's shell on the guest (no pty); the stdin gets `input` (with the hook at half
 * way), or nothing. The channel closing without an exit status is a broken connection.
 */
function runGuest(
  client: Client,
  command: string,
  input: { content: Buffer; onHalf: () => void | Promise<void> } | null,
  maxStdout = MAX_SCRIPT_OUTPUT,
): Promise<GuestRun> {
  return new Promise((resolve, reject) => {
    client.exec(command, (err, channel) => {
      if (err) {
        reject(new FiredeckError('unavailable', `The guest’s sshd refused the session: ${err.message}`));
        return;
      }
      const out: Buffer[] = [];
      let outBytes = 0;
      let overflow = false;
      let stderr = '';
      let exit: { code: number | null; signal: string | null } | null = null;
      channel.on('data', (d: Buffer) => {
        if (overflow) return;
        outBytes += d.byteLength;
        if (outBytes > maxStdout) {
          overflow = true;
          channel.close();
        } else out.push(d);
      });
      channel.stderr.on('data', (d: Buffer) => {
        if (stderr.length < MAX_SCRIPT_OUTPUT) stderr += d.toString('utf8');
      });
      channel.on('error', () => undefined);
      channel.stderr.on('error', () => undefined);
      channel.on('exit', (code: number | null, signal?: string) => {
        exit = { code: typeof code === 'number' ? code : null, signal: signal ?? null };
      });
      channel.on('close', () => {
        const stdout = Buffer.concat(out);
        for (const b of out) b.fill(0);
        if (exit === null && !overflow) {
          stdout.fill(0);
          reject(
            new FiredeckError('disconnected', 'The connection to the VM broke off during a credential transfer', {
              hint: 'Check that the VM is running, then transfer the credential again.',
            }),
          );
          return;
        }
        resolve({ code: exit?.code ?? null, signal: exit?.signal ?? null, stdout, stderr, overflow });
      });
      if (input === null) channel.end();
      else void feed(channel, input.content, input.onHalf).catch(() => channel.close());
    });
  });
}

/** Writes the content with the channel's flow control, pausing at half way for the hook. */
async function feed(channel: ClientChannel, content: Buffer, onHalf: () => void | Promise<void>): Promise<void> {
  let closed = false;
  channel.once('close', () => (closed = true));
  const half = Math.floor(content.byteLength / 2);
  for (let at = 0; at < content.byteLength; ) {
    if (closed) return;
    const end = Math.min(at + CHUNK, at < half ? half : content.byteLength);
    const more = channel.write(content.subarray(at, end));
    at = end;
    if (!more) await drained(channel);
    if (at === half) await onHalf();
  }
  if (content.byteLength === 0) await onHalf();
  if (!closed) channel.end();
}

function drained(channel: ClientChannel): Promise<void> {
  return new Promise((resolve, reject) => {
    const done = (): void => {
      channel.off('drain', done);
      channel.off('close', closed);
      resolve();
    };
    const closed = (): void => {
      channel.off('drain', done);
      reject(new Error('channel closed'));
    };
    channel.once('drain', done);
    channel.once('close', closed);
  });
}

function notAFile(guestPath: string, vm: string): FiredeckError {
  return new FiredeckError('invalid_state', `${guestPath} in VM ${vm} is a directory`, {
    hint: `Remove or rename ${guestPath} inside the VM, then transfer the credential again.`,
  });
}

/** A script's failure: its exit and stderr (paths and tool messages; the content only ever went to a file). */
function scriptFailed(what: string, vm: string, r: GuestRun): FiredeckError {
  const tail = r.stderr.trim().split('\n').slice(-5).join('; ').slice(0, 1000);
  return new FiredeckError('internal', `${what} in VM ${vm} failed (${exitText(r)})${tail === '' ? '' : `: ${tail}`}`, {
    hint: 'Check the VM’s disk space and the user’s home directory, then transfer the credential again.',
  });
}

function exitText(r: GuestRun): string {
  return r.signal !== null ? `killed by SIG${r.signal}` : `exit ${r.code ?? 'unknown'}`;
}

/** POSIX sh single quotes. */
function shq(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/**
 * The transfer's time limit and cancellation in one place: `race` rejects with `timeout` or `cancelled` as soon
 * as either comes, and the registered action (dropping the connection) runs once.
 */
class Deadline {
  private readonly started = Date.now();
  private readonly timer: NodeJS.Timeout;
  private readonly expired: Promise<never>;
  private fail!: (err: FiredeckError) => void;
  private actions: (() => void)[] = [];
  private reason: FiredeckError | null = null;
  private readonly onAbort = (): void =>
    this.expire(new FiredeckError('cancelled', `The credential transfer into VM ${this.vm} was cancelled`));

  constructor(
    private readonly limitMs: number,
    private readonly signal: AbortSignal | undefined,
    private readonly vm: string,
  ) {
    this.expired = new Promise<never>((_, reject) => (this.fail = reject));
    this.expired.catch(() => undefined);
    this.timer = setTimeout(
      () =>
        this.expire(
          new FiredeckError('timeout', `The credential transfer into VM ${vm} took longer than ${limitMs} ms`, {
            hint: 'The VM may be overloaded or its network down; transfer again once it answers.',
          }),
        ),
      limitMs,
    );
    if (signal?.aborted) this.onAbort();
    else signal?.addEventListener('abort', this.onAbort, { once: true });
  }

  remaining(): number {
    return Math.max(1, this.limitMs - (Date.now() - this.started));
  }

  onExpire(action: () => void): void {
    if (this.reason !== null) action();
    else this.actions.push(action);
  }

  /** Resolves with `p`, or rejects once the deadline passes; a late value is handed to `discard`. */
  async race<T>(p: Promise<T>, discard?: (late: T) => void): Promise<T> {
    if (this.reason !== null) {
      if (discard) void p.then(discard, () => undefined);
      throw this.reason;
    }
    try {
      return await Promise.race([p, this.expired]);
    } catch (err) {
      if (this.reason !== null && err === this.reason && discard) void p.then(discard, () => undefined);
      throw err;
    }
  }

  dispose(): void {
    clearTimeout(this.timer);
    this.signal?.removeEventListener('abort', this.onAbort);
  }

  private expire(reason: FiredeckError): void {
    if (this.reason !== null) return;
    this.reason = reason;
    for (const a of this.actions.splice(0)) a();
    this.fail(reason);
  }
}
