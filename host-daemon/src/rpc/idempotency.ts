import { createHash } from 'node:crypto';
import { FiredeckError } from '../../../src/shared/errors';

/** How a call ended, kept for a call sent again with its key. */
export type CallOutcome = { ok: true; result: unknown } | { ok: false; error: FiredeckError };

interface Entry {
  method: string;
  fingerprint: string;
  outcome: Promise<CallOutcome>;
  at: number;
}

export interface IdempotentCallsOptions {
  /** How long an outcome is kept for a repeat (default 10 minutes: longer than any reconnect takes). */
  ttlMs?: number;
  /** At most this many outcomes are kept (the oldest go first). */
  max?: number;
  now?: () => number;
}

/**
 * Mutating calls that carry an idempotency key (src/shared/rpc/jsonrpc.ts): the first is run; one sent again with
 * the same key by the same OS user, for the same method and params, gets the first one's outcome (waiting for it
 * if it still runs) and is not run again. A key reused for a different call is refused. Outcomes that say the
 * daemon itself failed (`internal`, `unavailable`) are not kept: sent again, such a call runs again. Kept in
 * memory: a daemon that restarts forgets them (a retried create then meets the name it made: `conflict`).
 */
export class IdempotentCalls {
  private readonly entries = new Map<string, Entry>();
  private readonly ttlMs: number;
  private readonly max: number;
  private readonly now: () => number;

  constructor(options: IdempotentCallsOptions = {}) {
    this.ttlMs = options.ttlMs ?? 10 * 60_000;
    this.max = options.max ?? 10_000;
    this.now = options.now ?? Date.now;
  }

  get size(): number {
    return this.entries.size;
  }

  /** Runs `call` once per (uid, key); `replayed` says the outcome is an earlier call's. */
  run(
    scope: { uid: number; key: string; method: string; params: unknown },
    call: () => Promise<unknown>,
  ): { replayed: boolean; outcome: Promise<CallOutcome> } {
    this.sweep();
    const id = `${scope.uid}:${scope.key}`;
    const fingerprint = createHash('sha256')
      .update(JSON.stringify(scope.params ?? null))
      .digest('hex');
    const known = this.entries.get(id);
    if (known) {
      if (known.method !== scope.method || known.fingerprint !== fingerprint) {
        throw new FiredeckError(
          'invalid_params',
          `This idempotency key was used for another call (${known.method} with other params)`,
          { hint: 'Draw a new key for each call; send a key again only with the very same call.' },
        );
      }
      return { replayed: true, outcome: known.outcome };
    }
    const outcome = call().then(
      (result): CallOutcome => ({ ok: true, result }),
      (err: unknown): CallOutcome => ({ ok: false, error: FiredeckError.from(err) }),
    );
    const entry: Entry = { method: scope.method, fingerprint, outcome, at: this.now() };
    this.entries.set(id, entry);
    void outcome.then((o) => {
      if (!o.ok && (o.error.kind === 'internal' || o.error.kind === 'unavailable') && this.entries.get(id) === entry) {
        this.entries.delete(id);
      }
    });
    while (this.entries.size > this.max) this.entries.delete(this.entries.keys().next().value!);
    return { replayed: false, outcome };
  }

  /** Entries are in the order they came: the old ones are at the front. */
  private sweep(): void {
    const oldest = this.now() - this.ttlMs;
    for (const [id, entry] of this.entries) {
      if (entry.at >= oldest) break;
      this.entries.delete(id);
    }
  }
}
