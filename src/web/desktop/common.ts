/**
 * What the desktop routes share: the text shown when desktop tokens are not configured.
 */
/** Shown wherever a token would be needed but DESKTOP_JWT_SECRET is unset. */
export const NOT_CONFIGURED = 'Desktop tokens are not enabled on this server (DESKTOP_JWT_SECRET is not set). Tell an administrator.';
