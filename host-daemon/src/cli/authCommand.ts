import { parseArgs } from 'node:util';
import { FiredeckError } from '../../../src/shared/errors';
import { AuthStartParams, isAuthSessionLive, type AuthSession } from '../../../src/shared/protocol/auth';
import type { DaemonClient } from './daemonClient';
import { textTable } from './textTable';

export const AUTH_USAGE = `usage: firedeckd auth <command> [options]

  start --user USER --provider codex|claude_code|gemini_cli|selftest [--headless] [--wait] [--json]
  submit-code <session>          reads the code from stdin (never argv) and hands it to the waiting CLI
  ls [--user USER] [--provider P] [--live] [--limit N] [--json]
  get <session> [--json]
  cancel <session>
  retry <session> [--wait]

A session logs a user's CLI in on their behalf: a throw-away browser VM runs the login, its desktop is where the
person logs in (the app shows it; 'firedeckd vnc <browser vm>' gives it raw), and the credential is written into
the user's CLI VM and verified there. --wait follows the session until it ends, printing each step.

--headless runs the CLI's own headless login in the user's CLI VM instead (codex, claude_code, gemini_cli): the
session shows a link (and Codex's one-time code) for the user to open anywhere. Where the CLI then wants a code
pasted back, 'start --wait' reads it from its stdin (paste it and press Enter), or run 'auth submit-code'.
`;

/** `firedeckd auth …`: auth sessions from the host's shell (an operator checks a host with the selftest provider). */
export async function authCommand(
  client: DaemonClient,
  args: string[],
  io: { stdin: NodeJS.ReadableStream; stdout: NodeJS.WritableStream },
): Promise<number> {
  const out = io.stdout;
  const [sub, ...rest] = args;
  const { values, positionals } = parseArgs({
    args: rest,
    options: {
      user: { type: 'string' },
      provider: { type: 'string' },
      live: { type: 'boolean' },
      limit: { type: 'string' },
      wait: { type: 'boolean' },
      json: { type: 'boolean' },
      headless: { type: 'boolean' },
    },
    strict: true,
    allowPositionals: true,
  });
  const id = (): string => {
    const given = positionals[0];
    if (given === undefined) throw new FiredeckError('invalid_params', `auth ${sub}: name the session (auth-…)`);
    return given;
  };
  const show = (s: AuthSession): void => {
    out.write(values.json ? JSON.stringify(s, null, 2) + '\n' : describe(s));
  };
  const follow = async (s: AuthSession): Promise<number> => {
    if (!values.wait) {
      show(s);
      return 0;
    }
    const ended = await waitForEnd(client, s, (line) => out.write(line + '\n'), io.stdin);
    if (values.json) out.write(JSON.stringify(ended, null, 2) + '\n');
    return ended.state === 'completed' ? 0 : 1;
  };

  switch (sub) {
    case 'start': {
      const parsed = AuthStartParams.safeParse({
        user: values.user,
        provider: values.provider,
        ...(values.headless ? { mode: 'headless' } : {}),
      });
      if (!parsed.success) {
        const why = parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ');
        throw new FiredeckError('invalid_params', `auth start: ${why}`, { hint: AUTH_USAGE });
      }
      return follow(await client.call('auth.start', parsed.data));
    }
    case 'ls':
    case 'list': {
      const limit = values.limit === undefined ? undefined : Number(values.limit);
      if (limit !== undefined && !(Number.isInteger(limit) && limit > 0)) {
        throw new FiredeckError('invalid_params', '--limit must be a positive whole number');
      }
      const sessions = await client.call('auth.list', {
        ...(values.user !== undefined ? { user: values.user } : {}),
        ...(values.provider !== undefined ? { provider: values.provider as AuthSession['provider'] } : {}),
        ...(values.live ? { live: true } : {}),
        ...(limit !== undefined ? { limit } : {}),
      });
      out.write(values.json ? JSON.stringify(sessions, null, 2) + '\n' : table(sessions));
      return 0;
    }
    case 'get':
      show(await client.call('auth.get', { id: id() }));
      return 0;
    case 'cancel':
      show(await client.call('auth.cancel', { id: id() }));
      return 0;
    case 'retry':
      return follow(await client.call('auth.retry', { id: id() }));
    case 'submit-code': {
      const session = id();
      const code = await readCode(io.stdin);
      if (code === null) {
        throw new FiredeckError('invalid_params', 'auth submit-code: no code on stdin', {
          hint: `Paste it and press Enter, or: firedeckd auth submit-code ${session} < code.txt`,
        });
      }
      show(await client.call('auth.submitCode', { id: session, code }));
      return 0;
    }
    default:
      out.write(AUTH_USAGE);
      return sub === undefined || sub === 'help' ? 0 : 2;
  }
}

/** Follows a session by its events until it ends; prints each new step and the authorize URL once. */
async function waitForEnd(
  client: DaemonClient,
  start: AuthSession,
  print: (line: string) => void,
  stdin: NodeJS.ReadableStream,
): Promise<AuthSession> {
  let seen = 0;
  let urlShown = false;
  let codeShown = false;
  let asked = false;
  const report = (s: AuthSession): void => {
    for (const t of s.transitions.slice(seen)) print(`${t.at}  ${t.state.padEnd(18)} ${t.reason ?? ''}`.trimEnd());
    seen = s.transitions.length;
    if (s.authorizeUrl && !urlShown) {
      urlShown = true;
      print(
        s.mode === 'headless'
          ? `open this link in any browser and log in: ${s.authorizeUrl}`
          : `authorize URL (open in the browser VM ${s.browserVmId ?? ''}): ${s.authorizeUrl}`,
      );
    }
    if (s.userCode && !codeShown) {
      codeShown = true;
      print(`one-time code to enter there: ${s.userCode}`);
    }
    if (s.awaitingCode && !asked && isAuthSessionLive(s.state)) {
      asked = true;
      print('the CLI waits for the code the provider shows: paste it here and press Enter');
      void readCode(stdin).then(
        (code) =>
          code === null
            ? print(`no code on stdin; paste it with: firedeckd auth submit-code ${s.id}`)
            : client.call('auth.submitCode', { id: s.id, code }).then(
                () => print('code handed to the CLI'),
                (err: unknown) => print(`code refused: ${FiredeckError.from(err).message}`),
              ),
        (err: unknown) => print(`could not read the code: ${FiredeckError.from(err).message}`),
      );
    }
    if (s.state === 'completed' && s.result) {
      print(`written into ${s.result.cliVmName}: ${s.result.path} sha256 ${s.result.sha256} (${s.result.verifiedBy})`);
    }
    if (s.error) print(`error: ${s.error.message}${s.error.hint ? ` — ${s.error.hint}` : ''}`);
  };
  return new Promise<AuthSession>((resolve, reject) => {
    let latest = start;
    const stop = client.onEvent((envelope) => {
      const e = envelope.event;
      if (e.type !== 'auth.session' || e.session.id !== start.id) return;
      latest = e.session;
      report(latest);
      if (!isAuthSessionLive(latest.state)) {
        stop();
        resolve(latest);
      }
    });
    client
      .call('events.subscribe', { types: ['auth.session'] })
      // Anything that happened before the subscription: read once, now that no later event can be missed.
      .then(() => client.call('auth.get', { id: start.id }))
      .then((now) => {
        report(now);
        latest = now;
        if (!isAuthSessionLive(now.state)) {
          stop();
          resolve(now);
        }
      })
      .catch((err: unknown) => {
        stop();
        reject(err instanceof Error ? err : new Error(String(err)));
      });
  });
}

function describe(s: AuthSession): string {
  const rows: [string, string][] = [
    ['id', s.id],
    ['user', s.user],
    ['provider', s.provider],
    ['state', s.state],
    ['mode', s.mode],
    ['started by', s.startedBy],
    ['created', s.createdAt],
    ['browser VM', s.browserVmId ?? '-'],
    ['CLI VM', s.cliVmName ? `${s.cliVmName} (${s.cliVmId})` : '-'],
  ];
  if (s.authorizeUrl) rows.push(['authorize', s.authorizeUrl]);
  if (s.userCode) rows.push(['code', s.userCode]);
  if (s.awaitingCode) rows.push(['waits for', `a pasted code: firedeckd auth submit-code ${s.id}`]);
  if (s.result)
    rows.push(['written', `${s.result.path} sha256 ${s.result.sha256} (${s.result.transfer}, ${s.result.verifiedBy})`]);
  if (s.error) rows.push(['error', `${s.error.message}${s.error.hint ? ` — ${s.error.hint}` : ''}`]);
  if (s.retryOf) rows.push(['retry of', s.retryOf]);
  rows.push(['steps', s.transitions.map((t) => t.state).join(' → ')]);
  return rows.map(([k, v]) => `${k.padEnd(11)} ${v}`).join('\n') + '\n';
}

function table(sessions: AuthSession[]): string {
  const rows = [['ID', 'USER', 'PROVIDER', 'STATE', 'STARTED BY', 'CREATED', 'CLI VM']];
  for (const s of sessions)
    rows.push([s.id, s.user, s.provider, s.state, s.startedBy, s.createdAt, s.cliVmName ?? '-']);
  return textTable(rows);
}

/**
 * The first non-empty line of stdin, trimmed, or null at its end: a pasted code never goes through argv (where
 * `ps` and shell history would show it). Stops reading once it has the line.
 */
export function readCode(stdin: NodeJS.ReadableStream, limit = 4096): Promise<string | null> {
  return new Promise((resolve, reject) => {
    let text = '';
    const done = (value: string | null): void => {
      stdin.off('data', onData);
      stdin.off('end', onEnd);
      stdin.off('error', onError);
      stdin.pause();
      resolve(value);
    };
    const onData = (chunk: Buffer | string): void => {
      text += typeof chunk === 'string' ? chunk : chunk.toString('utf8');
      const lines = text.split(/\r?\n/);
      const complete = lines.slice(0, -1).find((l) => l.trim() !== '');
      if (complete !== undefined) done(complete.trim());
      else if (text.length > limit) {
        stdin.off('data', onData);
        reject(new FiredeckError('invalid_params', `a code is at most ${limit} characters`));
      }
    };
    const onEnd = (): void => done(text.trim() === '' ? null : text.trim());
    const onError = (err: Error): void => reject(err);
    stdin.on('data', onData);
    stdin.once('end', onEnd);
    stdin.once('error', onError);
    stdin.resume();
  });
}
