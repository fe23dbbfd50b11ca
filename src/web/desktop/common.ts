/**
 * What the desktop routes share: the error body schema, a body field and the text shown when desktop tokens are not configured.
 */
/** Shown wherever a token would be needed but DESKTOP_JWT_SECRET is unset. */
export const NOT_CONFIGURED = 'Desktop tokens are not enabled on this server (DESKTOP_JWT_SECRET is not set). Tell an administrator.';

const ErrorSchema = { type: 'object', properties: { error: { type: 'string' } }, required: ['error'] } as const;
/** Response schemas of the error answers (`{"error"}`), for route schemas. */
export const errors = { 400: ErrorSchema, 401: ErrorSchema, 403: ErrorSchema, 404: ErrorSchema, 409: ErrorSchema, 422: ErrorSchema, 500: ErrorSchema, 502: ErrorSchema, 503: ErrorSchema };

/** A field of a JSON body that may be anything. */
export function field(body: unknown, name: string): unknown {
  return body !== null && typeof body === 'object' && name in body ? (body as Record<string, unknown>)[name] : undefined;
}
