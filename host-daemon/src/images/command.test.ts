import { describe, expect, it } from 'vitest';
import { FiredeckError } from '../../../src/shared/errors';
import { runCommand } from './command';

async function failure(p: Promise<unknown>): Promise<FiredeckError> {
  try {
    await p;
  } catch (err) {
    return FiredeckError.from(err);
  }
  throw new Error('expected a failure');
}

describe('runCommand', () => {
  it('reports every output line and returns captured stdout', async () => {
    const lines: string[] = [];
    const out = await runCommand(['sh', '-c', 'echo one; echo two >&2; echo three'], {
      step: 'files',
      capture: true,
      onLine: (l) => lines.push(l),
    });
    expect(out).toBe('one\nthree\n');
    expect(lines.sort()).toEqual(['one', 'three', 'two']);
  });

  it('names the step, the command and the last lines when a command fails', async () => {
    const err = await failure(
      runCommand(['sh', '-c', 'for i in $(seq 1 50); do echo line $i; done; exit 3'], { step: 'base' }),
    );
    expect(err.kind).toBe('build_failed');
    expect(err.message).toMatch(/^step base: `sh -c 'for i in/);
    expect(err.message).toMatch(/exited with 3/);
    expect(err.message).toContain('line 50');
    expect(err.message).not.toContain('line 1\n');
    expect(err.details).toMatchObject({ step: 'base', exitCode: 3 });
  });

  it('names a missing program', async () => {
    const err = await failure(runCommand(['firedeck-no-such-program'], { step: 'rootfs' }));
    expect(err.message).toMatch(/step rootfs: cannot run firedeck-no-such-program/);
  });

  it('kills the whole process group on abort and says the build was cancelled', async () => {
    const controller = new AbortController();
    const started = Date.now();
    const p = runCommand(['sh', '-c', 'sleep 30 & sleep 30; wait'], { step: 'npm', signal: controller.signal });
    setTimeout(() => controller.abort(), 100);
    const err = await failure(p);
    expect(err.kind).toBe('cancelled');
    expect(Date.now() - started).toBeLessThan(5000);
  });
});
