/**
 * The desktop channel on the dashboard, one plugin per concern: tokens (the card and its
 * routes), linking the original desktop app (its sign-in page, authorize, unlink), the
 * notification images, and the desktop app's REST endpoints; plus the bearer
 * authentication those routes accept.
 */
import type { FastifyInstance } from 'fastify';
import type { Clock } from '../../shared/clock.js';
import type { DesktopTokenStore } from '../../shared/desktopTokens.js';
import type { BearerAuth } from '../session.js';
import { desktopApiPlugin, type DesktopApiOptions, isDesktopApiRoute, REFRESH_PATH } from './api.js';
import { desktopImagesPlugin, type DesktopImagesOptions, isImagePath } from './images.js';
import { desktopLinkPlugin, type DesktopLinkOptions } from './link.js';
import { desktopTokensPlugin, identifyBearer, type DesktopTokensOptions } from './tokens.js';

/**
 * Desktop tokens as the session guard's bearer authentication: on the desktop REST routes
 * and the images (which need no identity at all: their name is the permission). A token
 * can never manage tokens or links.
 */
export function desktopBearer(store: DesktopTokenStore, secret: string | undefined, clock: Clock): BearerAuth {
  return {
    accepts: (method, path) => isDesktopApiRoute(method, path) || isImagePath(method, path),
    identify: (token, method, path) => identifyBearer(store, secret, clock, token, { refresh: method === 'POST' && path === REFRESH_PATH }),
    open: isImagePath,
  };
}

/** What the desktop feature needs. */
export type DesktopPluginOptions = DesktopTokensOptions & DesktopLinkOptions & DesktopImagesOptions & DesktopApiOptions;

/** The desktop card, linking, the images and the desktop REST. */
export async function desktopPlugin(app: FastifyInstance, opts: DesktopPluginOptions): Promise<void> {
  await desktopTokensPlugin(app, opts);
  await desktopLinkPlugin(app, opts);
  await desktopImagesPlugin(app, opts);
  await desktopApiPlugin(app, opts);
}
