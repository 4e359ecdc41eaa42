import { randomUUID } from 'node:crypto';
import type { DaemonEvent, DaemonEventType } from '../../../src/shared/protocol/events';

export interface Delivered {
  seq: number;
  at: string;
  event: DaemonEvent;
}

type Listener = (d: Delivered) => void;

/** The daemon's one event stream: a daemon-wide sequence number, delivery to filtered subscribers. */
export class EventBus {
  private seq = 0;
  private readonly subs = new Map<string, { types: Set<string> | null; listener: Listener }>();

  /** How many subscribers are listening (a waiter that ended must not be among them). */
  get subscriberCount(): number {
    return this.subs.size;
  }

  get lastSeq(): number {
    return this.seq;
  }

  emit(event: DaemonEvent): void {
    const d: Delivered = { seq: ++this.seq, at: new Date().toISOString(), event };
    for (const { types, listener } of [...this.subs.values()]) {
      if (types !== null && !types.has(event.type)) continue;
      try {
        listener(d);
      } catch {
        // One broken subscriber must not stop the others.
      }
    }
  }

  subscribe(
    types: readonly (DaemonEventType | string)[] | null,
    listener: Listener,
  ): { id: string; unsubscribe: () => void } {
    const id = randomUUID();
    this.subs.set(id, { types: types === null ? null : new Set(types), listener });
    return { id, unsubscribe: () => this.subs.delete(id) };
  }

  unsubscribe(id: string): boolean {
    return this.subs.delete(id);
  }
}
