import { z } from 'zod';
import { AuditListParams, AuditListResult } from './audit';
import { AuthListParams, AuthSession, AuthSessionRef, AuthStartParams, AuthSubmitCodeParams } from './auth';
import { DaemonInfo } from './daemon';
import { EventsSubscribeParams, EventsSubscribeResult, EventsUnsubscribeParams } from './events';
import {
  GoldenImageVersion,
  ImageBuild,
  ImageBuildParams,
  ImageBuildRef,
  ImageBuildResult,
  ImageBuildsParams,
  ImageGcParams,
  ImageGcResult,
  ImageListParams,
  ImagePromoteParams,
  ImageRollbackParams,
} from './image';
import { Vm, VmConsoleTail, VmConsoleTailParams, VmCreateParams, VmRef, VmStopParams, VmWaitReadyParams } from './vm';
import { ProxySetParams, ProxyView } from './proxy';
import { VmStatsParams, VmStatsResult } from './vmStats';

/**
 * One declaration per RPC method, imported by the daemon (which validates params) and by every client
 * (which validates results). `mutating` methods are written to the audit log with the caller. Every params
 * schema is strict: an unknown or misspelt field is refused (-32602 naming it), never silently dropped.
 */
export interface MethodDef<P extends z.ZodType, R extends z.ZodType> {
  readonly method: string;
  readonly params: P;
  readonly result: R;
  readonly mutating: boolean;
}

function method<const N extends string, P extends z.ZodType, R extends z.ZodType>(
  name: N,
  params: P,
  result: R,
  mutating: boolean,
): MethodDef<P, R> & { readonly method: N } {
  return { method: name, params, result, mutating };
}

const Empty = z.object({}).strict();
const Ok = z.object({ ok: z.literal(true) });

export const methods = {
  'daemon.info': method('daemon.info', Empty, DaemonInfo, false),
  'events.subscribe': method('events.subscribe', EventsSubscribeParams, EventsSubscribeResult, false),
  'events.unsubscribe': method('events.unsubscribe', EventsUnsubscribeParams, Ok, false),
  'vm.list': method('vm.list', z.object({ includeDestroyed: z.boolean().optional() }).strict(), z.array(Vm), false),
  'vm.get': method('vm.get', VmRef, Vm, false),
  'vm.create': method('vm.create', VmCreateParams, Vm, true),
  'vm.start': method('vm.start', VmRef, Vm, true),
  'vm.stop': method('vm.stop', VmStopParams, Vm, true),
  'vm.restart': method('vm.restart', VmStopParams, Vm, true),
  'vm.destroy': method('vm.destroy', VmRef, Vm, true),
  'vm.waitReady': method('vm.waitReady', VmWaitReadyParams, Vm, false),
  'vm.console.tail': method('vm.console.tail', VmConsoleTailParams, VmConsoleTail, false),
  'vm.stats': method('vm.stats', VmStatsParams, VmStatsResult, false),
  'image.build': method('image.build', ImageBuildParams, ImageBuildResult, true),
  'image.build.start': method('image.build.start', ImageBuildParams, ImageBuild, true),
  'image.build.cancel': method('image.build.cancel', ImageBuildRef, ImageBuild, true),
  'image.builds': method('image.builds', ImageBuildsParams, z.array(ImageBuild), false),
  'image.list': method('image.list', ImageListParams, z.array(GoldenImageVersion), false),
  'image.promote': method('image.promote', ImagePromoteParams, GoldenImageVersion, true),
  'image.rollback': method('image.rollback', ImageRollbackParams, GoldenImageVersion, true),
  'image.gc': method('image.gc', ImageGcParams, ImageGcResult, true),
  'image.gc.plan': method('image.gc.plan', ImageGcParams, ImageGcResult, false),
  'auth.start': method('auth.start', AuthStartParams, AuthSession, true),
  'auth.get': method('auth.get', AuthSessionRef, AuthSession, false),
  'auth.list': method('auth.list', AuthListParams, z.array(AuthSession), false),
  'auth.cancel': method('auth.cancel', AuthSessionRef, AuthSession, true),
  'auth.retry': method('auth.retry', AuthSessionRef, AuthSession, true),
  'auth.submitCode': method('auth.submitCode', AuthSubmitCodeParams, AuthSession, true),
  'audit.list': method('audit.list', AuditListParams, AuditListResult, false),
  'proxy.get': method('proxy.get', Empty, ProxyView, false),
  'proxy.set': method('proxy.set', ProxySetParams, ProxyView, true),
  'proxy.clear': method('proxy.clear', Empty, ProxyView, true),
} as const;

export type Methods = typeof methods;
export type MethodName = keyof Methods;
export type ParamsOf<M extends MethodName> = z.input<Methods[M]['params']>;
export type ResultOf<M extends MethodName> = z.output<Methods[M]['result']>;

export function isMethodName(name: string): name is MethodName {
  return Object.prototype.hasOwnProperty.call(methods, name);
}
