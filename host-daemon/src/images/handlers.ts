import type { RpcServer } from '../rpc/server';
import type { ImageService } from './service';

/**
 * The `image.*` RPC methods. `image.build` answers when the build has finished, `image.build.start` at once;
 * progress goes out as events either way, and `image.builds` lists builds running or ended.
 */
export function registerImageHandlers(server: RpcServer, images: ImageService): void {
  server.register('image.build', (params) => images.build(params));
  server.register('image.list', (params) => images.list(params.name));
  server.register('image.promote', (params) => images.promote(params.name, params.version));
  server.register('image.rollback', (params) => images.rollback(params.name));
  server.register('image.gc', (params) => images.gc(params.name, params.keep));
  server.register('image.gc.plan', (params) => images.gc(params.name, params.keep, { dryRun: true }));
  server.register('image.build.start', (params) => images.start(params));
  server.register('image.builds', (params) => images.listBuilds(params.recipe));
  server.register('image.build.cancel', (params) => images.cancel(params.buildId));
}
