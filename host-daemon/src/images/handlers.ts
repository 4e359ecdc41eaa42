import type { RpcServer } from '../rpc/server';
import type { ImageService } from './service';

/** The `image.*` RPC methods. `image.build` answers when the build has finished; progress goes out as events. */
export function registerImageHandlers(server: RpcServer, images: ImageService): void {
  server.register('image.build', (params) => images.build(params));
  server.register('image.list', (params) => images.list(params.name));
  server.register('image.promote', (params) => images.promote(params.name, params.version));
  server.register('image.rollback', (params) => images.rollback(params.name));
  server.register('image.gc', (params) => images.gc(params.name, params.keep));
}
