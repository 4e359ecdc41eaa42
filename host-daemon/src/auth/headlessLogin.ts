import type { Client, ClientChannel } from 'ssh2';
import { FiredeckError } from '../../../src/shared/errors';
import type { HeadlessLoginSpec } from '../../../src/shared/protocol/providers';
import { connectGuest, openGuestSession, type GuestSshTarget } from '../guest/guestSsh';
import { GUEST_HOME } from '../credentials/transferPayload';

/** The pty a headless login runs on: narrow enough that a CLI wraps a long URL (the parser joins it again). */
export const HEADLESS_PTY = { term: 'xterm-256color', cols: 100, rows: 40, width: 0, height: 0 };

/** The line the login's shell prints first: its pid, which is its session's id (sshd starts it with setsid). */
const PID_LINE = /FIREDECK-LOGIN-PID (\d+)/;
/** At most this much output is kept (the URL and prompts come early; a TUI's repaints are cut off). */
const MAX_OUTPUT = 512 * 1024;

/** The terminal of a running login, as HeadlessRun drives it. */
export interface LoginTerminal {
  /** Everything printed so far. */
  text(): string;
  /** The exit status once the login ended, else null. */
  ended(): { code: number | null; signal: string | null } | null;
  send(keys: string): void;
  /** Resolves once `test` holds (checked now and at each output or the end); rejects when the signal aborts. */
  until<T>(test: () => T | null, signal: AbortSignal): Promise<T>;
}

/**
 * A provider's headless login running in a CLI VM over its sshd, as its user, on a pty: its output as it comes,
 * keys written to its terminal, its exit, and a kill that leaves no process of it behind in the VM.
 */
export class HeadlessLogin implements LoginTerminal {
  private output = '';
  private pid: number | null = null;
  private readonly listeners = new Set<() => void>();
  private exit: { code: number | null; signal: string | null } | null = null;
  private closed = false;

  private constructor(
    private readonly client: Client,
    private readonly channel: ClientChannel,
  ) {
    channel.on('data', (d: Buffer) => this.take(d));
    channel.stderr.on('data', (d: Buffer) => this.take(d));
    channel.on('error', () => undefined);
    channel.on('exit', (code: number | null, signal?: string) => {
      // ssh2 names the signal as the channel request did (`KILL`, or `SIGKILL` from some servers).
      this.exit = { code: typeof code === 'number' ? code : null, signal: signal?.replace(/^SIG/, '') ?? null };
    });
    channel.on('close', () => {
      this.closed = true;
      this.notify();
    });
  }

  /** Connects to the CLI VM and starts the login (argv and environment from the provider table only). */
  static async start(target: GuestSshTarget, spec: HeadlessLoginSpec): Promise<HeadlessLogin> {
    const client = await connectGuest(target);
    client.on('error', () => undefined);
    try {
      const channel = await openGuestSession(client, loginCommand(spec), spec.tty ? HEADLESS_PTY : null);
      return new HeadlessLogin(client, channel);
    } catch (err) {
      client.end();
      throw err;
    }
  }

  /** Everything printed so far (the pid line removed). */
  text(): string {
    return this.output.replace(/FIREDECK-LOGIN-PID \d+\r?\n/, '');
  }

  /** The exit status once the login ended, else null. */
  ended(): { code: number | null; signal: string | null } | null {
    return this.closed ? (this.exit ?? { code: null, signal: null }) : null;
  }

  /** Writes keys to the login's terminal (a prompt's answer, a pasted code). */
  send(keys: string): void {
    if (!this.closed) this.channel.write(keys);
  }

  /**
   * Resolves once `test` holds on the login (checked now and at each output or its end), or rejects when the
   * signal aborts.
   */
  until<T>(test: () => T | null, signal: AbortSignal): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const check = (): void => {
        if (signal.aborted) {
          done();
          reject(signal.reason instanceof Error ? signal.reason : new Error('aborted'));
          return;
        }
        const value = test();
        if (value !== null) {
          done();
          resolve(value);
        }
      };
      const done = (): void => {
        this.listeners.delete(check);
        signal.removeEventListener('abort', check);
      };
      this.listeners.add(check);
      signal.addEventListener('abort', check, { once: true });
      check();
    });
  }

  /**
   * Ends the login: every process of its session is killed in the VM (a CLI's children too), then the
   * connection closes. Waits for the VM to confirm; a VM that cannot be reached any more has nothing running.
   */
  async kill(): Promise<void> {
    try {
      if (!this.closed && this.pid !== null) {
        await runQuiet(this.client, `pkill -KILL -s ${this.pid}; exit 0`);
      }
    } finally {
      this.close();
    }
  }

  /** Closes the connection and forgets the output (it held what the person pasted, echoed). */
  close(): void {
    this.channel.close();
    this.client.end();
    this.output = '';
  }

  private take(d: Buffer): void {
    if (this.output.length < MAX_OUTPUT) this.output += d.toString('utf8');
    if (this.pid === null) {
      const m = PID_LINE.exec(this.output);
      if (m) this.pid = Number(m[1]);
    }
    this.notify();
  }

  private notify(): void {
    for (const l of [...this.listeners]) l();
  }
}

/**
 * The login as the VM's user in a login shell at home: the pid first (the kill's handle), then the CLI by
 * `exec "$@"`, every word shell-quoted, the table's environment before it.
 */
export function loginCommand(spec: HeadlessLoginSpec): string {
  const env = Object.entries(spec.env).map(([k, v]) => {
    if (!/^[A-Z_][A-Z0-9_]*$/.test(k)) throw new FiredeckError('internal', `Bad environment name ${k}`);
    return shq(`${k}=${v}`);
  });
  return [
    `export HOME=${shq(GUEST_HOME)}; cd "$HOME" || exit 1;`,
    `echo "FIREDECK-LOGIN-PID $$";`,
    `exec env ${env.join(' ')} sh -lc 'exec "$@"' sh ${spec.argv.map(shq).join(' ')}`,
  ].join(' ');
}

/** Runs a command on the connection and waits for it to end; its output is dropped. */
function runQuiet(client: Client, command: string): Promise<void> {
  return new Promise((resolve) => {
    client.exec(command, (err, channel) => {
      if (err) return resolve();
      channel.on('data', () => undefined);
      channel.stderr.on('data', () => undefined);
      channel.on('error', () => undefined);
      channel.on('close', () => resolve());
    });
  });
}

function shq(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}
