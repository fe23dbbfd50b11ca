/**
 * The refusal mark of a chat, personal or team: Telegram refused delivery for good (the
 * analyst blocked the bot, the bot was removed from the group), and when. One rule decides
 * when a delivery clears it, for both kinds of chat: a delivery clears a mark made before
 * Telegram answered it, never one made at or after (the note of a delivery can be written
 * late on a busy host, after the chat refused a later message).
 */
import { z } from 'zod';

/** The mark as the shared documents keep it (`delivery_refused`). */
export const RefusalMarkSchema = z.looseObject({ at: z.string(), reason: z.string() });
export type RefusalMark = z.infer<typeof RefusalMarkSchema>;

/** A mark made now (milliseconds kept: the rule compares it with Telegram's answer). */
export function refusalMark(now: number, reason: string): RefusalMark {
  return { at: new Date(now).toISOString(), reason };
}

/** Does a delivery Telegram answered at `answeredAt` (ms) clear `mark`? False when there is none. */
export function deliveryClears(mark: RefusalMark | undefined, answeredAt: number): boolean {
  if (!mark) return false;
  const at = Date.parse(mark.at);
  // An unreadable time cannot be ordered after the delivery: the delivery wins.
  return !(at >= answeredAt);
}
