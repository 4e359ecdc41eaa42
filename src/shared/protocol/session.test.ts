import { describe, expect, it } from 'vitest';
import { LineFramer } from '../rpc/framing';
import { classifyServerFrame } from '../rpc/jsonrpc';
import { SESSION_HELLO_METHOD, callerFromHello, sessionHelloFrame } from './session';

/** What the daemon makes of the bytes a dialer wrote: the frame as its server classifies it. */
function received(bytes: string): { method: string; params: unknown } {
  const [ev] = new LineFramer().push(bytes);
  if (ev?.type !== 'frame') throw new Error('no frame');
  const incoming = classifyServerFrame(ev.text);
  if (incoming.type !== 'notification') throw new Error(`not a notification: ${incoming.type}`);
  return { method: incoming.message.method, params: incoming.message.params };
}

describe('session.hello', () => {
  it('what a dialer sends, the daemon reads as the same caller', () => {
    const frame = sessionHelloFrame({ user: 'ops', uid: 1000 });
    expect(frame.endsWith('\n')).toBe(true);
    const { method, params } = received(frame);
    expect(method).toBe(SESSION_HELLO_METHOD);
    expect(callerFromHello(params)).toEqual({ user: 'ops', uid: 1000 });
  });

  it('keeps the part of a hello that is valid and leaves the rest unknown', () => {
    expect(callerFromHello({ user: 'bad name/../x', uid: 1001 })).toEqual({ user: 'unknown', uid: 1001 });
    expect(callerFromHello({ user: 'ops', uid: -1 })).toEqual({ user: 'ops', uid: null });
    expect(callerFromHello({ user: 'ops', uid: 1.5 })).toEqual({ user: 'ops', uid: null });
    expect(callerFromHello({ user: 'a'.repeat(65), uid: 0 })).toEqual({ user: 'unknown', uid: 0 });
    expect(callerFromHello(null)).toEqual({ user: 'unknown', uid: null });
    expect(callerFromHello('ops')).toEqual({ user: 'unknown', uid: null });
  });
});
