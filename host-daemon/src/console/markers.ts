/** What the guest announces on its serial console (guest contract). */
export type ConsoleMarker = { type: 'ready'; what: string } | { type: 'hostkey'; key: string };

const READY = /(?:^|\s)FIREDECK-READY ([a-z][a-z0-9-]{0,31})\s*$/;
const HOSTKEY =
  /(?:^|\s)FIREDECK-HOSTKEY (ssh-ed25519|ecdsa-sha2-nistp(?:256|384|521)|ssh-rsa) ([A-Za-z0-9+/]{16,8192}={0,3})\s*$/;
// eslint-disable-next-line no-control-regex
const ANSI = /\x1b\[[0-9;?]*[A-Za-z]/g;

/** Parses one console line; markers must end their line so that partial output never counts. */
export function parseMarker(line: string): ConsoleMarker | null {
  const clean = line.replace(ANSI, '').replace(/\r/g, '');
  const ready = READY.exec(clean);
  if (ready) return { type: 'ready', what: ready[1]! };
  const key = HOSTKEY.exec(clean);
  if (key) return { type: 'hostkey', key: `${key[1]} ${key[2]}` };
  return null;
}

/**
 * What a `FIREDECK-HOSTKEY` marker does to the key pinned for this boot (cleared when the VM boots): the first
 * key announced is pinned; the same key again changes nothing; another key is refused and never trusted. The
 * serial port is not the guest's root alone (a user in its `dialout` group, or any process the guest lets
 * write there, can print a marker), so a later line must not move `firedeckd shell` to another sshd.
 */
export type HostKeyVerdict = 'pin' | 'same' | 'refused';

export function hostKeyVerdict(pinned: string | null | undefined, announced: string): HostKeyVerdict {
  if (!pinned) return 'pin';
  return pinned === announced ? 'same' : 'refused';
}

/**
 * Splits console bytes into lines and finds markers. A line longer than `maxLine` is cut (a flooding guest
 * cannot grow the buffer), and the cut pieces are never mistaken for markers.
 */
export class MarkerScanner {
  private partial = '';
  private overflowed = false;
  private readonly decoder = new TextDecoder('utf-8', { fatal: false });
  private readonly recent: string[] = [];

  constructor(
    private readonly maxLine = 16 * 1024,
    private readonly keepLines = 50,
  ) {}

  push(chunk: Uint8Array): ConsoleMarker[] {
    const text = this.decoder.decode(chunk, { stream: true });
    const out: ConsoleMarker[] = [];
    let start = 0;
    for (;;) {
      const nl = text.indexOf('\n', start);
      if (nl === -1) break;
      const line = this.partial + text.slice(start, nl);
      start = nl + 1;
      const wasCut = this.overflowed;
      this.partial = '';
      this.overflowed = false;
      this.remember(line);
      if (wasCut) continue;
      const m = parseMarker(line);
      if (m) out.push(m);
    }
    this.partial += text.slice(start);
    if (this.partial.length > this.maxLine) {
      this.partial = this.partial.slice(-this.maxLine);
      this.overflowed = true;
    }
    return out;
  }

  /** The last lines seen, for error messages (e.g. a readiness deadline). */
  /** The newest lines, as text safe to show: these end up in errors and `lastError`, printed on terminals. */
  lastLines(): string[] {
    const lines = [...this.recent];
    if (this.partial !== '') lines.push(this.partial);
    return lines.map((l) => printable(l.replace(ANSI, '')));
  }

  private remember(line: string): void {
    this.recent.push(line.length > 1000 ? line.slice(0, 1000) + '…' : line);
    if (this.recent.length > this.keepLines) this.recent.shift();
  }
}

/** Text a guest wrote, without the control characters (C0 but tab, DEL, C1) that could steer a terminal. */
export function printable(text: string): string {
  // eslint-disable-next-line no-control-regex
  return text.replace(/[\u0000-\u0008\u000a-\u001f\u007f-\u009f]/g, '');
}
