/**
 * The desktop WebSocket protocol: what a desktop may send, what the gateway sends, and the
 * close codes it uses. Every frame is one JSON object with a `type`.
 */
import { z } from 'zod';
import type { DesktopNotification } from './client.js';

/** Close codes the gateway uses (4000-4999 is the range for applications). */
export const CloseCode = {
  /** The token was refused (bad, expired, revoked) or the first message was not `auth`. */
  authFailed: 4001,
  /** No `auth` message within the auth timeout. */
  authTimeout: 4002,
  /** The token was revoked, or expired, while connected. */
  tokenRevoked: 4003,
  /** Too many unanswered pings. */
  heartbeatTimeout: 4008,
  /** The user already holds the maximum number of connections. */
  tooManyConnections: 4029,
  /** The desktop does not read what it is sent. */
  tooSlow: 4013,
  /** The gateway holds as many connections as it may. */
  overloaded: 1013,
  /** The gateway is shutting down. */
  goingAway: 1001,
} as const;

const AuthMessage = z.strictObject({ type: z.literal('auth'), token: z.string().min(1).max(8192) });
const PongMessage = z.looseObject({ type: z.literal('pong') });

/** A message from a desktop, once parsed. */
export type ClientMessage = { type: 'auth'; token: string } | { type: 'pong' };

/** A message the gateway sends. */
export type ServerMessage =
  | { type: 'auth_ok'; username: string }
  | { type: 'auth_error'; message: string }
  | { type: 'ping' }
  | { type: 'error'; message: string }
  | ({ type: 'notification' } & DesktopNotification);

/** Parses one text frame; on failure, `error` says what a desktop developer should fix. */
export function parseClientMessage(text: string): { message: ClientMessage } | { error: string } {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return { error: 'message is not valid JSON' };
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return { error: 'message must be a JSON object with a "type"' };
  }
  const type = (value as { type?: unknown }).type;
  if (type === 'auth') {
    const parsed = AuthMessage.safeParse(value);
    if (!parsed.success) return { error: 'auth message must be {"type":"auth","token":"<JWT>"}' };
    return { message: parsed.data };
  }
  if (type === 'pong') {
    return PongMessage.safeParse(value).success ? { message: { type: 'pong' } } : { error: 'invalid pong message' };
  }
  if (typeof type !== 'string') return { error: 'message must have a string "type"' };
  return { error: `unknown message type '${type.slice(0, 64)}' (expected "auth" or "pong")` };
}
