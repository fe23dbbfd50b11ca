/**
 * The page's static assets (client script, stylesheet, icon), read once at start-up from
 * the `static/` folder beside this module (the build copies `src/web/static/` into
 * `dist/src/web/static/`, so an installed package needs no `src/`) and served under `/static/` with a content hash in their URLs, so they
 * can be cached for long and still change with a deploy.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance } from 'fastify';

/** The assets directory, beside this module in the build output. */
export const STATIC_DIR = fileURLToPath(new URL('./static/', import.meta.url));

const TYPES: Record<string, string> = {
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
};

interface Asset {
  body: Buffer;
  type: string;
  hash: string;
}

/** The served assets and their cache-busting URLs. */
export class Assets {
  private readonly files = new Map<string, Asset>();

  constructor(names: readonly string[] = ['api.js', 'dashboard.js', 'dashboard.css', 'favicon.svg'], dir = STATIC_DIR) {
    for (const name of names) {
      const body = readFileSync(`${dir}${name}`);
      const ext = name.slice(name.lastIndexOf('.'));
      this.files.set(name, { body, type: TYPES[ext] ?? 'application/octet-stream', hash: createHash('sha256').update(body).digest('hex').slice(0, 12) });
    }
  }

  /** Adds one more file of the assets directory (a feature plugin's own script). */
  add(name: string, dir = STATIC_DIR): void {
    if (this.files.has(name)) return;
    const body = readFileSync(`${dir}${name}`);
    const ext = name.slice(name.lastIndexOf('.'));
    this.files.set(name, { body, type: TYPES[ext] ?? 'application/octet-stream', hash: createHash('sha256').update(body).digest('hex').slice(0, 12) });
  }

  /** The URL to reference `name` by. */
  url(name: string): string {
    const asset = this.files.get(name);
    if (!asset) throw new Error(`unknown static asset ${name}`);
    return `/static/${name}?v=${asset.hash}`;
  }

  /** Serves GET /static/<name>. */
  register(app: FastifyInstance): void {
    app.get<{ Params: { name: string }; Querystring: { v?: string } }>('/static/:name', async (request, reply) => {
      const asset = this.files.get(request.params.name);
      if (!asset) return reply.code(404).type('text/plain; charset=utf-8').send('Not found');
      const versioned = request.query.v === asset.hash;
      return reply
        .type(asset.type)
        .header('cache-control', versioned ? 'public, max-age=31536000, immutable' : 'no-cache')
        .header('etag', `"${asset.hash}"`)
        .send(asset.body);
    });
  }
}
