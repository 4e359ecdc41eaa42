import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import net from 'node:net';

/** A fresh private directory for one rig part; removed by the part's stop(). */
export function makeTempDir(prefix: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), `firedeck-${prefix}-`));
}

/** A TCP port on 127.0.0.1 that was free a moment ago (the kernel picks it). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr !== null ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

/** Fails with a message naming the missing part, so a suite never silently passes without it. */
export function requireTool(file: string, aptPackage: string): string {
  try {
    fs.accessSync(file, fs.constants.X_OK);
    return file;
  } catch {
    throw new Error(`test rig: ${file} is missing; install it with: apt-get install ${aptPackage}`);
  }
}

/** Resolves when `text` has appeared in the stream's output, or rejects at the deadline with what was seen. */
export function waitForOutput(
  stream: NodeJS.ReadableStream,
  pattern: RegExp,
  timeoutMs: number,
  what: string,
): Promise<string> {
  return new Promise((resolve, reject) => {
    let seen = '';
    const onData = (chunk: Buffer | string): void => {
      seen += chunk.toString();
      if (seen.length > 65536) seen = seen.slice(-32768);
      const m = pattern.exec(seen);
      if (m) {
        cleanup();
        resolve(m[0]);
      }
    };
    const onEnd = (): void => {
      cleanup();
      reject(new Error(`${what}: output ended before ${pattern}; last output:\n${seen.slice(-2000)}`));
    };
    const timer = setTimeout(() => {
      cleanup();
      reject(new Error(`${what}: no ${pattern} within ${timeoutMs} ms; last output:\n${seen.slice(-2000)}`));
    }, timeoutMs);
    const cleanup = (): void => {
      clearTimeout(timer);
      stream.off('data', onData);
      stream.off('end', onEnd);
    };
    stream.on('data', onData);
    stream.on('end', onEnd);
  });
}
