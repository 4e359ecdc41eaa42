import net from 'node:net';
import { LineFramer } from '../../../../src/shared/rpc/framing';
import type { MethodName } from '../../../../src/shared/protocol/methods';

/**
 * Test helpers shared by the RpcServer tests (server.test.ts, params.fuzz.test.ts); not used by the daemon.
 * Params that pass each method's schema, so that one change to them is the only thing wrong.
 */
export const validParams: Record<MethodName, Record<string, unknown>> = {
  'daemon.info': {},
  'events.subscribe': { types: ['vm.state'] },
  'events.unsubscribe': { subscription: 'sub-1' },
  'vm.list': { includeDestroyed: true },
  'vm.get': { id: 'vm-0000abcd' },
  'vm.create': { name: 'web', kind: 'cli', owner: 'alice', image: 'test' },
  'vm.start': { id: 'vm-0000abcd' },
  'vm.stop': { id: 'vm-0000abcd' },
  'vm.restart': { id: 'vm-0000abcd' },
  'vm.destroy': { id: 'vm-0000abcd' },
  'vm.waitReady': { id: 'vm-0000abcd', marker: 'sshd', timeoutSeconds: 60 },
  'vm.console.tail': { id: 'vm-0000abcd', lines: 10 },
  'vm.stats': { ids: ['vm-0000abcd'] },
  'image.build': { recipe: 'test' },
  'image.build.start': { recipe: 'test' },
  'image.build.cancel': { buildId: 'build-0123abcd' },
  'image.builds': { recipe: 'test' },
  'image.list': { name: 'test' },
  'image.promote': { name: 'test', version: '20261203T000000-0123456789ab' },
  'image.rollback': { name: 'test' },
  'image.gc': {},
  'image.gc.plan': { keep: 1 },
  'auth.start': { user: 'alice', provider: 'selftest' },
  'auth.get': { id: 'auth-0000abcd' },
  'auth.list': { user: 'alice', limit: 10 },
  'auth.cancel': { id: 'auth-0000abcd' },
  'auth.retry': { id: 'auth-0000abcd' },
  'auth.submitCode': { id: 'auth-0000abcd', code: 'ABCD-1234' },
  'audit.list': { method: 'vm.create', limit: 10 },
  'proxy.get': {},
  'proxy.set': { https: 'http://proxy.invalid:3128', noProxy: ['.internal'] },
  'proxy.clear': {},
};

/** Sends raw text on a new connection to `at` and returns the first `count` frames the server answers with. */
export function exchangeAt(at: string, text: string, count: number): Promise<Record<string, unknown>[]> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(at);
    const framer = new LineFramer(64 * 1024 * 1024);
    const frames: Record<string, unknown>[] = [];
    socket.once('connect', () => socket.write(text));
    socket.on('data', (chunk: Buffer) => {
      for (const ev of framer.push(chunk)) {
        if (ev.type === 'frame') frames.push(JSON.parse(ev.text) as Record<string, unknown>);
      }
      if (frames.length >= count) {
        socket.end();
        resolve(frames);
      }
    });
    socket.once('error', reject);
  });
}
