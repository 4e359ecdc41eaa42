import path from 'node:path';
import { defaultCacheDir } from '../../host-daemon/src/images/builder';
import { ImageCatalog } from '../../host-daemon/src/images/catalog';
import { ImageService } from '../../host-daemon/src/images/service';

/**
 * Builds the named golden images with the project's pipeline (reused from the cache under
 * `${FIREDECK_CACHE_DIR:-/var/cache/firedeck}/golden` while their recipes are unchanged) and imports each into
 * a daemon's catalog as its current version. Step changes are printed to stderr: a first build takes minutes.
 */
export async function installGoldenImages(stateDir: string, names: readonly string[]): Promise<void> {
  const golden = new ImageCatalog(path.join(defaultCacheDir(), 'golden'));
  const service = new ImageService({
    catalog: golden,
    emit: (e) => {
      if (e.type === 'image.build' && e.line === null)
        process.stderr.write(`[${e.recipe} image] ${e.step} ${e.status}\n`);
    },
  });
  for (const name of names) {
    const built = await service.build({ recipe: name });
    await new ImageCatalog(stateDir).importVersion(name, golden.resolve(`${name}@${built.image.version}`).dir);
  }
}
