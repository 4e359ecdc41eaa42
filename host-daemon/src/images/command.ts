import { spawn } from 'node:child_process';
import { FiredeckError } from '../../../src/shared/errors';

const TAIL_LINES = 30;

export interface RunOptions {
  /** The build step this command belongs to; named in the error when it fails. */
  step: string;
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  signal?: AbortSignal;
  onLine?: (line: string) => void;
  /** Collect stdout and return it (lines are still reported). */
  capture?: boolean;
}

/**
 * Runs one build command in its own process group, reporting each output line. A failure names the step,
 * the command and the last lines it printed; an abort kills the whole group.
 */
export function runCommand(argv: readonly string[], options: RunOptions): Promise<string> {
  const [file, ...args] = argv;
  if (file === undefined) throw new Error('runCommand: empty argv');
  const shown = argv.map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`)).join(' ');
  return new Promise((resolve, reject) => {
    if (options.signal?.aborted) {
      reject(cancelled(options.step));
      return;
    }
    const child = spawn(file, args, {
      cwd: options.cwd,
      env: options.env ?? process.env,
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    const tail: string[] = [];
    let captured = '';
    const onAbort = (): void => {
      if (child.pid !== undefined) {
        try {
          process.kill(-child.pid, 'SIGKILL');
        } catch {
          // Already gone.
        }
      }
    };
    options.signal?.addEventListener('abort', onAbort, { once: true });
    const lineReader = (isStdout: boolean): ((chunk: Buffer) => void) => {
      let partial = '';
      return (chunk) => {
        const text = chunk.toString('utf8');
        if (isStdout && options.capture) captured += text;
        const lines = (partial + text).split(/\r?\n/);
        partial = lines.pop() ?? '';
        for (const line of lines) {
          tail.push(line);
          if (tail.length > TAIL_LINES) tail.shift();
          options.onLine?.(line);
        }
      };
    };
    child.stdout.on('data', lineReader(true));
    child.stderr.on('data', lineReader(false));
    child.once('error', (err) => {
      options.signal?.removeEventListener('abort', onAbort);
      reject(
        new FiredeckError('build_failed', `step ${options.step}: cannot run ${file}: ${err.message}`, {
          hint: file.includes('/') ? undefined : `install ${file} on the host`,
          details: { step: options.step, command: shown },
        }),
      );
    });
    child.once('close', (code, sig) => {
      options.signal?.removeEventListener('abort', onAbort);
      if (options.signal?.aborted) {
        reject(cancelled(options.step));
      } else if (code === 0) {
        resolve(captured);
      } else {
        const how = sig ? `was killed by ${sig}` : `exited with ${code}`;
        reject(
          new FiredeckError('build_failed', `step ${options.step}: \`${shown}\` ${how}\n${tail.join('\n')}`, {
            details: { step: options.step, command: shown, exitCode: code, tail },
          }),
        );
      }
    });
  });
}

function cancelled(step: string): FiredeckError {
  return new FiredeckError('cancelled', `image build cancelled during step ${step}`, { details: { step } });
}
