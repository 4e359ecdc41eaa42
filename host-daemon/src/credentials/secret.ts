import { createHash, timingSafeEqual } from 'node:crypto';
import { inspect } from 'node:util';

const REDACTED = '[redacted]';

/**
 * Plaintext bytes (a credential file, a proxy URL with a password) that never show themselves: `String()`,
 * template literals, `JSON.stringify`, `util.inspect`, `console.log` and test-runner diffs all print a redaction.
 * The bytes live in a private field, so no enumeration, spread or structured clone reaches them. Read them with
 * `bytes()`/`text()` at the one place that must hand them on (a cipher, a debugfs staging file).
 */
export class Secret {
  readonly #bytes: Buffer;

  private constructor(bytes: Buffer) {
    this.#bytes = bytes;
  }

  /** Copies `value` into a buffer of its own (not Node's shared pool, so `wipe()` clears every copy we made). */
  static from(value: Uint8Array | string): Secret {
    const source = typeof value === 'string' ? Buffer.from(value, 'utf8') : value;
    const own = Buffer.alloc(source.byteLength);
    own.set(source);
    if (typeof value === 'string') source.fill(0);
    return new Secret(own);
  }

  /** Takes ownership of a buffer that nothing else holds (e.g. a decipher's output), without copying. */
  static adopt(bytes: Buffer): Secret {
    return new Secret(bytes);
  }

  get size(): number {
    return this.#bytes.byteLength;
  }

  /** The plaintext itself (not a copy): hand it on, do not keep it. */
  bytes(): Buffer {
    return this.#bytes;
  }

  text(): string {
    return this.#bytes.toString('utf8');
  }

  /** Hex sha256 of the plaintext: safe to show for high-entropy secrets (see CredentialVault). */
  sha256(): string {
    return createHash('sha256').update(this.#bytes).digest('hex');
  }

  equals(other: Secret): boolean {
    const a = this.#bytes;
    const b = other.bytes();
    return a.byteLength === b.byteLength && timingSafeEqual(a, b);
  }

  /** Overwrites the bytes with zeros; the JavaScript strings made from them by `text()` cannot be wiped. */
  wipe(): void {
    this.#bytes.fill(0);
  }

  toString(): string {
    return REDACTED;
  }

  toJSON(): string {
    return REDACTED;
  }

  [inspect.custom](): string {
    return `Secret <${REDACTED}, ${this.#bytes.byteLength} bytes>`;
  }
}
