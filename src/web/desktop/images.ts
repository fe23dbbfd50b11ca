/**
 * Images of desktop notifications, kept by the bot (shared/desktopImages.ts) and served at
 * `/api/notifications/images/<name>.png`, the `image_url` desktops receive. The desktop
 * app fetches it with no header, so the unguessable, expiring name is the permission; a
 * desktop bearer token or the browser session may be sent too (the guard checks them).
 */
import type { FastifyInstance } from 'fastify';
import type { Clock } from '../../shared/clock.js';
import { DesktopImageStore, IMAGE_URL_PREFIX, imageNameOf } from '../../shared/desktopImages.js';

/** Where the images are. */
export interface DesktopImagesOptions {
  dataDir: string;
  clock: Clock;
}

/** True for the image paths, which need no identity. */
export function isImagePath(method: string, path: string): boolean {
  return (method === 'GET' || method === 'HEAD') && path.startsWith(IMAGE_URL_PREFIX);
}

/** The image route, as a Fastify plugin. */
export async function desktopImagesPlugin(app: FastifyInstance, opts: DesktopImagesOptions): Promise<void> {
  const store = new DesktopImageStore(opts.dataDir);

  app.get<{ Params: { file: string } }>(`${IMAGE_URL_PREFIX}:file`, async (request, reply) => {
    const name = imageNameOf(`${IMAGE_URL_PREFIX}${request.params.file}`);
    // One answer for a bad name, a wrong name and an expired image: nothing to probe.
    const image = name === null ? null : await store.get(name, opts.clock.now());
    if (image === null) return reply.code(404).header('cache-control', 'no-store').send({ error: 'There is no such image (images are kept for a limited time).' });
    const type = /^image\/(png|jpeg|gif|webp)$/.test(image.contentType) ? image.contentType : 'application/octet-stream';
    return reply
      .type(type)
      .header('cache-control', 'private, max-age=3600')
      .header('x-content-type-options', 'nosniff')
      .header('content-security-policy', "default-src 'none'")
      .send(image.bytes);
  });
}
