import { z } from 'zod';
import { AuthSession } from './auth';
import { ImageBuildStatus, ImageBuildStep } from './image';
import { Vm, VmState } from './vm';
import { VmStatsSample } from './vmStats';

/** Everything the daemon tells subscribers, one discriminated union. */
export const DaemonEvent = z.discriminatedUnion('type', [
  z.object({ type: z.literal('vm.created'), vm: Vm }),
  z.object({ type: z.literal('vm.state'), vm: Vm, from: VmState, to: VmState }),
  z.object({ type: z.literal('vm.ready'), vmId: z.string(), marker: z.string() }),
  z.object({ type: z.literal('vm.destroyed'), vmId: z.string() }),
  z.object({ type: z.literal('vm.stats'), samples: z.array(VmStatsSample) }),
  /** A VM's hypervisor stopped answering its health probe (`unresponsiveSince` set) or answers again (null). */
  z.object({ type: z.literal('vm.health'), vm: Vm }),
  z.object({
    type: z.literal('image.build'),
    buildId: z.string(),
    recipe: z.string(),
    step: ImageBuildStep,
    percent: z.number().nullable(),
    line: z.string().nullable(),
    status: ImageBuildStatus,
  }),
  /** An auth session moved (or its URL, code or result changed): the whole session as it is now. */
  z.object({ type: z.literal('auth.session'), session: AuthSession }),
  z.object({
    type: z.literal('daemon.reconciled'),
    adopted: z.array(z.string()),
    crashed: z.array(z.string()),
    /** VMs a killed daemon left `stopping`: their stop finished. */
    stopped: z.array(z.string()),
    orphansRemoved: z.array(z.string()),
  }),
]);
export type DaemonEvent = z.infer<typeof DaemonEvent>;
export type DaemonEventType = DaemonEvent['type'];

/** The envelope of the `event` notification: a daemon-wide sequence number and a timestamp. */
export const EventEnvelope = z.object({
  subscription: z.string(),
  seq: z.number().int(),
  at: z.string(),
  event: DaemonEvent,
});
export type EventEnvelope = z.infer<typeof EventEnvelope>;

export const EVENT_NOTIFICATION = 'event' as const;

export const EventsSubscribeParams = z
  .object({
    /** Event types to receive; all when omitted. */
    types: z.array(z.string().max(64)).max(32).optional(),
  })
  .strict();
export const EventsUnsubscribeParams = z.object({ subscription: z.string() }).strict();
export const EventsSubscribeResult = z.object({ subscription: z.string(), seq: z.number().int() });
