import { FiredeckError } from '../../../src/shared/errors';
import { describeSettings, renderDefaultConfigFile, type ConfigLayer } from '../configFile';

const USAGE = `usage: firedeckd config show | default

  show      every setting's effective value and where it comes from (flag, environment, file:line, default)
  default   the documented config file with every setting at its default (as shipped in /etc/firedeck)
`;

/** `firedeckd config show|default`. */
export function configCommand(argv: string[], layer: ConfigLayer, out: NodeJS.WritableStream = process.stdout): number {
  const [sub, ...rest] = argv;
  if (rest.length > 0) throw new FiredeckError('invalid_params', `firedeckd config ${sub}: unexpected ${rest[0]}`);
  switch (sub) {
    case 'default':
      out.write(renderDefaultConfigFile());
      return 0;
    case 'show': {
      out.write(`# config file: ${layer.file ?? 'none (defaults)'}\n`);
      const rows = describeSettings(layer, process.env);
      const width = Math.max(...rows.map((r) => r.key.length));
      for (const r of rows) out.write(`${r.key.padEnd(width)} = ${r.value ?? ''}  # ${r.source}\n`);
      return 0;
    }
    case undefined:
    case 'help':
      out.write(USAGE);
      return sub === undefined ? 2 : 0;
    default:
      throw new FiredeckError('invalid_params', `firedeckd config: unknown subcommand ${JSON.stringify(sub)}`, {
        hint: 'firedeckd config show | default',
      });
  }
}
