import { parseArgs } from 'node:util';
import { FiredeckError } from '../../../src/shared/errors';
import type { GoldenImageVersion } from '../../../src/shared/protocol/image';
import { ImageName, ImageVersion } from '../../../src/shared/protocol/image';
import type { DaemonConfig } from '../config';
import { ImageCatalog } from './catalog';
import { ImageService } from './service';

export const IMAGE_USAGE = `usage: firedeckd image <command> [options]

commands:
  build <recipe> [--skip-boot-test] [--no-promote]   build images/<recipe> (cached by recipe hash) and publish it
  list [<name>] [--json]                            published versions ("*" marks the current one)
  promote <name> <version>                          make a version current
  rollback <name>                                   make the version before the current one current
  gc [<name>] [--keep N]                            remove old versions (default: keep 2 besides the current);
                                                    without a name also build layers no recipe needs (unused 7 days)

options:
  --state-dir DIR   catalog under DIR/images (default /var/lib/firedeck, env FIREDECK_STATE_DIR)
  --cache-dir DIR   build layers and work dirs (default /var/cache/firedeck, env FIREDECK_CACHE_DIR)
  --images-dir DIR  recipes (default: the images/ dir of this checkout, env FIREDECK_IMAGES_DIR)
`;

/**
 * `firedeckd image …`: runs in this process against the host's catalog (no daemon needed), printing build
 * progress to stderr. Interrupting a build (Ctrl-C, SIGTERM) leaves nothing published and removes its work dir.
 */
export async function runImageCommand(
  argv: string[],
  config: DaemonConfig,
  deps: { imagesInUse: (stateDir: string) => ReadonlySet<string> },
): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    options: {
      'state-dir': { type: 'string' },
      'cache-dir': { type: 'string' },
      'images-dir': { type: 'string' },
      'skip-boot-test': { type: 'boolean' },
      'no-promote': { type: 'boolean' },
      keep: { type: 'string' },
      json: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
    allowPositionals: true,
  });
  const [command, ...args] = positionals;
  if (values.help || command === undefined || command === 'help') {
    process.stdout.write(IMAGE_USAGE);
    return command === undefined && !values.help ? 2 : 0;
  }
  const stateDir = values['state-dir'] ?? config.stateDir;
  const catalog = new ImageCatalog(stateDir);
  const service = new ImageService({
    catalog,
    inUse: () => deps.imagesInUse(stateDir),
    cacheDir: values['cache-dir'],
    recipesDir: values['images-dir'],
    emit: (event) => {
      if (event.type !== 'image.build') return;
      if (event.line === null)
        process.stderr.write(`==> ${event.step}${event.percent === null ? '' : ` (${event.percent}%)`}\n`);
      else process.stderr.write(`    ${event.line}\n`);
    },
  });
  const arg = (i: number, what: string, schema: typeof ImageName | typeof ImageVersion): string => {
    const value = args[i];
    const parsed = schema.safeParse(value);
    if (!parsed.success) {
      throw new FiredeckError(
        'invalid_params',
        `firedeckd image ${command}: ${what} ${value === undefined ? 'missing' : `${JSON.stringify(value)}: ${parsed.error.issues[0]?.message}`}`,
        {
          hint: IMAGE_USAGE.split('\n')
            .find((l) => l.trim().startsWith(command))
            ?.trim(),
        },
      );
    }
    return parsed.data;
  };
  const print = (versions: GoldenImageVersion[]): void => {
    if (values.json) {
      process.stdout.write(`${JSON.stringify(versions, null, 2)}\n`);
      return;
    }
    for (const v of versions) {
      const gib = (v.diskBytes / 2 ** 30).toFixed(2);
      process.stdout.write(
        `${v.current ? '*' : ' '} ${v.name}@${v.version}  ${v.builtAt}  kernel ${v.kernelRelease}  ${gib} GiB on disk\n`,
      );
    }
  };

  switch (command) {
    case 'build': {
      const recipe = arg(0, 'recipe', ImageName);
      const controller = new AbortController();
      const stop = (): void => {
        process.stderr.write('firedeckd image build: interrupted, cleaning up\n');
        service.cancelAll();
        controller.abort();
      };
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
      try {
        const t0 = Date.now();
        const result = await service.build({
          recipe,
          skipBootTest: values['skip-boot-test'],
          promote: !values['no-promote'],
        });
        process.stderr.write(
          `${result.reused ? 'reused' : 'built'} ${recipe}@${result.image.version} in ${((Date.now() - t0) / 1000).toFixed(1)} s\n`,
        );
        print([result.image]);
      } finally {
        process.off('SIGINT', stop);
        process.off('SIGTERM', stop);
      }
      return 0;
    }
    case 'list':
      print(service.list(args[0] === undefined ? undefined : arg(0, 'name', ImageName)));
      return 0;
    case 'promote':
      print([service.promote(arg(0, 'name', ImageName), arg(1, 'version', ImageVersion))]);
      return 0;
    case 'rollback':
      print([service.rollback(arg(0, 'name', ImageName))]);
      return 0;
    case 'gc': {
      const keep = values.keep === undefined ? undefined : Number(values.keep);
      if (keep !== undefined && (!Number.isInteger(keep) || keep < 0)) {
        throw new FiredeckError('invalid_params', `--keep must be a whole number ≥ 0 (got ${values.keep})`);
      }
      const result = service.gc(args[0] === undefined ? undefined : arg(0, 'name', ImageName), keep);
      process.stdout.write(
        `removed ${result.removed.length} version(s) and layer(s), freed ${(result.freedBytes / 2 ** 30).toFixed(2)} GiB\n`,
      );
      for (const ref of result.removed) process.stdout.write(`  ${ref}\n`);
      return 0;
    }
    default:
      process.stderr.write(`firedeckd image: unknown command ${JSON.stringify(command)}\n${IMAGE_USAGE}`);
      return 2;
  }
}
