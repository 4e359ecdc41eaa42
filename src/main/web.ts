import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { FiredeckError } from '../shared/errors';
import { AppService } from './app/appService';
import { HostRegistry } from './hosts/hostRegistry';
import { openLocalStore } from './hosts/localStore';
import { startWebServer } from './web/webServer';

/**
 * Web mode's one wiring file (plain Node, no Electron): flags → config → services → HTTP server on 127.0.0.1.
 * Flags win over the environment: --port (FIREDECK_WEB_PORT, 0 = free), --data-dir (FIREDECK_DATA_DIR),
 * --local-daemon (FIREDECK_LOCAL_DAEMON: a command prefix that runs the local firedeckd, e.g.
 * "env FIREDECK_SOCKET=/run/firedeck/firedeckd.sock node /opt/firedeck/firedeckd.cjs"), --renderer-dir.
 */
async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      port: { type: 'string' },
      'data-dir': { type: 'string' },
      'local-daemon': { type: 'string' },
      'renderer-dir': { type: 'string' },
    },
    strict: true,
  });
  const portText = values.port ?? process.env.FIREDECK_WEB_PORT ?? '0';
  const port = Number(portText);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new FiredeckError('invalid_params', `--port must be 0-65535 (got ${JSON.stringify(portText)})`);
  }
  const dataDir = values['data-dir'] ?? process.env.FIREDECK_DATA_DIR ?? defaultDataDir();
  const localDaemon = values['local-daemon'] ?? process.env.FIREDECK_LOCAL_DAEMON ?? null;
  const here = path.dirname(fileURLToPath(import.meta.url));
  const rendererDir = values['renderer-dir'] ?? path.resolve(here, '../renderer');

  const db = openLocalStore(dataDir);
  const service = new AppService({
    mode: 'web',
    registry: new HostRegistry(db),
    localDaemonCommand: localDaemon && localDaemon.trim() !== '' ? localDaemon : null,
  });
  const server = await startWebServer({ service, rendererDir, port });
  service.connectAtStart();
  // The one place the token is shown. The link stays good until this server stops (reloads, other browsers).
  process.stdout.write(
    `Firedeck web mode: ${server.url}\n` +
      '  It works until web mode stops, in any browser, after reloads and a browser restart: open it again\n' +
      '  whenever a tab asks for it. Each start of web mode prints a new link.\n',
  );

  const stop = (): void => {
    service.shutdown();
    void server.close().then(() => {
      db.close();
      process.exit(0);
    });
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

function defaultDataDir(): string {
  const base = process.env.XDG_DATA_HOME ?? path.join(os.homedir(), '.local', 'share');
  return path.join(base, 'firedeck');
}

main().catch((err: unknown) => {
  const e = FiredeckError.from(err);
  process.stderr.write(`firedeck web mode: ${e.message}${e.hint ? `\nhint: ${e.hint}` : ''}\n`);
  process.exit(1);
});
