import fs from 'node:fs';
import { parseArgs } from 'node:util';
import { FiredeckError } from '../../src/shared/errors';
import { FIREDECK_VERSION } from '../../src/shared/version';
import { configCommand } from './cli/configCommand';
import { createDaemon } from './daemon';
import { doctorCommand } from './cli/doctorCommand';
import { defaultConfig, type DaemonConfig } from './config';
import { applyConfigFile } from './configFile';
import { isHostCliCommand, runHostCli } from './cli/hostCli';
import { runImageCommand } from './images/cli';
import { imagesInUseAt } from './vms/imagesInUse';

/**
 * firedeckd's entry point: flags → config → command. `serve` builds every service in one place (daemon.ts,
 * the composition root) and runs it until SIGTERM.
 */
const USAGE = `usage: firedeckd <command> [options]

commands:
  serve         run the daemon (as root; normally from its systemd unit)
  dial-stdio    bridge stdin/stdout to the daemon's socket (used over SSH by the app)
  version       print the version
  vm            operate VMs: ls, get, create, start, stop, restart, destroy (firedeckd vm help)
  auth          auth sessions (a CLI's login on a user's behalf): start, ls, get, cancel, retry (firedeckd auth help)
  proxy         the proxy browser VMs use: show, set (JSON on stdin), clear (firedeckd proxy help)
  audit         the audit log, newest first: --user, --method, --vm, --since, --json (firedeckd audit --help)
  console       a VM's serial console: firedeckd console <vm> [--follow] [--attach]
  shell         a shell in a CLI VM as user firedeck: firedeckd shell <vm> [-- command]
  vnc           a browser VM's desktop as raw RFB on stdin/stdout (the host authenticates): firedeckd vnc <vm>
  image         golden images: build, list, promote, rollback, gc (firedeckd image help)
  doctor        check this host (KVM, drivers, bridge, nftables, disk, socket group, cgroup v2) [--json]
  config        the settings: firedeckd config show (effective values and sources) | default (documented file)

common options:
  --config FILE     settings file (default /etc/firedeck/firedeckd.conf, env FIREDECK_CONFIG)
  --socket PATH     daemon socket (default /run/firedeck/firedeckd.sock, env FIREDECK_SOCKET)
  --state-dir DIR   persistent state (default /var/lib/firedeck, env FIREDECK_STATE_DIR)
  --run-dir DIR     volatile state (default /run/firedeck, env FIREDECK_RUN_DIR)
`;

async function main(argv: string[]): Promise<number> {
  // The doctor reads the config file itself: a broken file is one of its findings, not a crash.
  if (argv[0] === 'doctor') return doctorCommand(argv.slice(1));
  const layer = applyConfigFile(argv, process.env);
  if (layer.argv[0] === 'config') return configCommand(layer.argv.slice(1), layer);
  const [command, ...rest] = layer.argv;
  if (isHostCliCommand(command)) return runHostCli(command, rest, defaultConfig());
  if (command === 'image') return runImageCommand(rest, defaultConfig(), { imagesInUse: imagesInUseAt });
  const { values } = parseArgs({
    args: rest,
    options: {
      socket: { type: 'string' },
      'state-dir': { type: 'string' },
      'run-dir': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
    allowPositionals: true,
  });
  const config = defaultConfig();
  if (values['run-dir'] !== undefined) {
    config.runDir = values['run-dir'];
    if (values.socket === undefined && process.env.FIREDECK_SOCKET === undefined) {
      config.socketPath = `${config.runDir}/firedeckd.sock`;
    }
  }
  if (values.socket !== undefined) config.socketPath = values.socket;
  if (values['state-dir'] !== undefined) config.stateDir = values['state-dir'];

  switch (command) {
    case 'serve':
      return serve(config);
    case 'version':
      process.stdout.write(`firedeckd ${FIREDECK_VERSION}\n`);
      return 0;
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      process.stdout.write(USAGE);
      return command === undefined ? 2 : 0;
    default:
      process.stderr.write(`firedeckd: unknown command ${JSON.stringify(command)}\n${USAGE}`);
      return 2;
  }
}

async function serve(config: DaemonConfig): Promise<number> {
  // The run dir is traversable so that members of the socket's group can reach it; the socket itself is 0660.
  fs.mkdirSync(config.runDir, { recursive: true, mode: 0o755 });
  fs.mkdirSync(config.stateDir, { recursive: true, mode: 0o750 });
  const log = (line: string): void => {
    process.stderr.write(`${new Date().toISOString()} ${line}\n`);
  };
  const daemon = createDaemon(config, { log, env: process.env });
  await daemon.start();
  log(`firedeckd ${FIREDECK_VERSION} serving ${config.socketPath}`);

  return new Promise<number>((resolve) => {
    const stop = (signal: string): void => {
      log(`${signal}: shutting down (VMs keep running)`);
      void daemon.close().then(
        () => {
          log('stopped');
          resolve(0);
          // Everything that keeps state is closed. What may still hold the event loop is a TCP connection to a
          // guest that vanished (a destroyed VM never answers the FIN), for minutes: the daemon ends here.
          process.exit(0);
        },
        (err: unknown) => {
          log(`shutting down failed: ${FiredeckError.from(err).message}`);
          process.exit(1);
        },
      );
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
  });
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    const e = FiredeckError.from(err);
    process.stderr.write(`firedeckd: ${e.message}${e.hint ? `\nhint: ${e.hint}` : ''}\n`);
    process.exitCode = 1;
  },
);
