import { FiredeckError } from '../../../src/shared/errors';
import { ProxySetParams, type ProxyView } from '../../../src/shared/protocol/proxy';
import type { DaemonClient } from './daemonClient';

export const PROXY_USAGE = `usage: firedeckd proxy <command>

  show [--json]   the proxy browser VMs use (any user and password shown as ***)
  set             read the settings as JSON from stdin, e.g.
                    {"https": "http://user:password@proxy.corp:3128", "noProxy": [".corp", "10.0.0.0/8"]}
                  (fields http, https, noProxy; from stdin so that a password never shows in argv or history)
  clear           browser VMs go without a proxy

The settings are sealed in the daemon's vault and reach each browser VM made afterwards through its config drive
(its Firefox, oauth agent and login); CLI VMs never get them. set and clear need root.
`;

export type ProxyArgs = { sub: 'show'; json: boolean } | { sub: 'set' } | { sub: 'clear' } | { sub: 'help' };

/** Parses `firedeckd proxy …` before any connection: bad input needs no daemon. */
export function parseProxyArgs(args: readonly string[]): ProxyArgs {
  const [sub, ...rest] = args;
  if (sub === undefined || sub === 'help' || sub === '--help' || sub === '-h') return { sub: 'help' };
  const extra = (allowed: readonly string[]): void => {
    const bad = rest.findIndex((a) => !allowed.includes(a));
    if (bad >= 0) {
      // Named by position, never echoed: what was typed there may be a proxy URL with its password.
      throw new FiredeckError('invalid_params', `proxy ${sub}: unexpected argument ${bad + 1}`, {
        hint: sub === 'set' ? 'proxy set takes its settings as JSON on stdin, never in argv.' : PROXY_USAGE,
      });
    }
  };
  switch (sub) {
    case 'show':
      extra(['--json']);
      return { sub: 'show', json: rest.includes('--json') };
    case 'set':
      extra([]);
      return { sub: 'set' };
    case 'clear':
      extra([]);
      return { sub: 'clear' };
    default:
      throw new FiredeckError('invalid_params', 'proxy: unknown command (show, set or clear)', { hint: PROXY_USAGE });
  }
}

/** The settings `proxy set` read from stdin, checked against the contract; errors name fields, never values. */
export function parseProxyInput(text: string): ProxySetParams {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new FiredeckError('invalid_params', 'proxy set: stdin is not JSON', {
      hint: `echo '{"https": "http://proxy.corp:3128"}' | firedeckd proxy set`,
    });
  }
  const parsed = ProxySetParams.safeParse(json);
  if (!parsed.success) {
    const why = parsed.error.issues.map((i) => `${i.path.join('.') || '(top)'}: ${i.code}`).join('; ');
    throw new FiredeckError('invalid_params', `proxy set: ${why}`, { hint: 'Fields: http, https, noProxy (a list).' });
  }
  return parsed.data;
}

export async function readAll(stdin: NodeJS.ReadableStream, limit = 64 * 1024): Promise<string> {
  let text = '';
  for await (const chunk of stdin) {
    text += typeof chunk === 'string' ? chunk : (chunk as Buffer).toString('utf8');
    if (text.length > limit)
      throw new FiredeckError('invalid_params', `proxy set: stdin holds more than ${limit} bytes`);
  }
  return text;
}

/** `firedeckd proxy show|set|clear` against the daemon. */
export async function proxyCommand(
  client: DaemonClient,
  args: Exclude<ProxyArgs, { sub: 'help' }>,
  io: { stdin: NodeJS.ReadableStream; stdout: NodeJS.WritableStream },
): Promise<number> {
  let view: ProxyView;
  if (args.sub === 'show') view = await client.call('proxy.get', {});
  else if (args.sub === 'set') view = await client.call('proxy.set', parseProxyInput(await readAll(io.stdin)));
  else view = await client.call('proxy.clear', {});
  io.stdout.write(args.sub === 'show' && args.json ? JSON.stringify(view, null, 2) + '\n' : describeProxy(view));
  return 0;
}

export function describeProxy(view: ProxyView): string {
  if (!view.configured) return 'proxy: none (browser VMs connect directly)\n';
  return [
    `http:     ${view.http ?? '-'}`,
    `https:    ${view.https ?? '-'}`,
    `no proxy: ${view.noProxy.length > 0 ? view.noProxy.join(', ') : '-'}`,
    'Browser VMs made from now on use it; running ones keep what they booted with.',
    '',
  ].join('\n');
}
