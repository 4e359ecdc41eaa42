import { afterAll, describe, expect, it } from 'vitest';
import { LocalTransport } from './localTransport';

/** Collects a stream's text and resolves once it matches. */
function waitForText(stream: NodeJS.ReadableStream, pattern: RegExp, timeoutMs = 10_000): Promise<string> {
  let text = '';
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no ${String(pattern)} in ${JSON.stringify(text)}`)), timeoutMs);
    const onData = (chunk: Buffer): void => {
      text += chunk.toString();
      if (pattern.test(text)) {
        clearTimeout(timer);
        stream.off('data', onData);
        resolve(text);
      }
    };
    stream.on('data', onData);
  });
}

describe('local transport (the embedded host: real processes, a real pty from script)', () => {
  const transport = new LocalTransport();
  afterAll(() => transport.close());

  it('starts a pty at the requested size and passes resizes on as SIGWINCH', async () => {
    // bash reports the size at start and whenever the kernel signals a window change (a trapped signal ends
    // the `wait` builtin at once, unlike `read`, which would hold the trap back until a line came).
    const probe = `bash -c 'trap "echo size=\\$(stty size)" WINCH; echo size=$(stty size); while :; do sleep 600 & wait $!; done'`;
    const ch = await transport.exec(probe, { pty: { cols: 80, rows: 24 } });
    ch.stream.on('error', () => undefined);
    await waitForText(ch.stream, /size=24 80/);
    const resized = waitForText(ch.stream, /size=40 132/);
    ch.resize(132, 40);
    await resized;
    ch.close();
    await ch.exited;
  });

  it('runs commands without a pty on plain pipes, where resize does nothing', async () => {
    const ch = await transport.exec('tty; echo done');
    ch.stream.on('error', () => undefined);
    const out = waitForText(ch.stream, /done/);
    ch.resize(100, 30);
    expect(await out).toMatch(/not a tty/);
    expect((await ch.exited).code).toBe(0);
  });
});
