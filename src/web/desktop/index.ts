/**
 * The desktop channel on the dashboard, one plugin per concern: tokens (the card and its
 * routes, and the bearer authentication), the notification images, and the desktop app's
 * REST endpoints.
 */
import type { FastifyInstance } from 'fastify';
import { desktopApiPlugin, type DesktopApiOptions } from './api.js';
import { desktopImagesPlugin, type DesktopImagesOptions } from './images.js';
import { desktopTokensPlugin, type DesktopTokensOptions } from './tokens.js';

export { desktopBearer } from './tokens.js';

/** The routes that accept a desktop bearer token. */
export function desktopBearerRoute(method: string, path: string): boolean {
  if (method === 'GET' || method === 'HEAD') return path === '/api/desktop/scripts' || path.startsWith('/api/images/');
  return method === 'POST' && path === '/api/desktop/scripts/run';
}

/** What the desktop feature needs. */
export type DesktopPluginOptions = DesktopTokensOptions & DesktopImagesOptions & DesktopApiOptions;

/** The desktop card, its token API, the images and the desktop REST. */
export async function desktopPlugin(app: FastifyInstance, opts: DesktopPluginOptions): Promise<void> {
  await desktopTokensPlugin(app, opts);
  await desktopImagesPlugin(app, opts);
  await desktopApiPlugin(app, opts);
}
