/**
 * Images of desktop notifications, kept by the bot in `$NOTIFY_DATA_DIR/images/` and served
 * to their owner (browser session or desktop bearer token).
 */
import { promises as fsp } from 'node:fs';
import { join } from 'node:path';
import type { FastifyInstance, FastifyReply } from 'fastify';
import { field, who } from './common.js';

/** The bot's image ids (`<base36 time>-<6 hex>`): nothing else reaches the file system. */
export const IMAGE_ID_RE = /^[a-z0-9]+-[0-9a-f]{6}$/;

/** Where the images are. */
export interface DesktopImagesOptions {
  dataDir: string;
}

/** The image routes, as a Fastify plugin. */
export async function desktopImagesPlugin(app: FastifyInstance, opts: DesktopImagesOptions): Promise<void> {
  const imageDir = join(opts.dataDir, 'images');


  app.get<{ Params: { id: string } }>('/api/images/:id', async (request, reply) => {
    const identity = who(request);
    const id = request.params.id;
    if (!IMAGE_ID_RE.test(id)) return reply.code(400).header('cache-control', 'no-store').send({ error: 'That is not an image id.' });
    const notFound = (): FastifyReply => reply.code(404).header('cache-control', 'no-store').send({ error: 'There is no such image.' });
    let meta: unknown;
    try {
      meta = JSON.parse(await fsp.readFile(join(imageDir, `${id}.json`), 'utf8'));
    } catch {
      return notFound();
    }
    const owner = field(meta, 'user');
    // Another user's image is "not found" too, so ids cannot be probed.
    if (typeof owner !== 'string' || owner !== identity.username) return notFound();
    let bytes: Buffer;
    try {
      bytes = await fsp.readFile(join(imageDir, `${id}.img`));
    } catch {
      return notFound();
    }
    const declared = field(meta, 'content_type');
    const type = typeof declared === 'string' && /^image\/(png|jpeg|gif|webp)$/.test(declared) ? declared : 'application/octet-stream';
    return reply.type(type).header('cache-control', 'private').header('x-content-type-options', 'nosniff').send(bytes);
  });

}
