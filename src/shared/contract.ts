/**
 * The script contract (docs/notifications.md) and the send API's bodies as zod schemas, one
 * source of truth for types and validation: what a script prints, and the send API's
 * request and answer bodies.
 */
import { z } from 'zod';
import { parseDurationMs } from './units.js';
import { UserNameSchema } from './userName.js';

/** Default cooldown between two sent notifications of one script. */
export const DEFAULT_COOLDOWN = '1h';

/** Parses a cooldown (any duration: `30m`, `1h`, `6h`, `1d`, see units.ts) into whole seconds; null if invalid. */
export function parseCooldownSeconds(text: string): number | null {
  const ms = parseDurationMs(text);
  return ms === null ? null : Math.ceil(ms / 1000);
}

/**
 * Bounds on a script's `data`: it is stored (for only_if_changed) and compared, so data too
 * deep or too large to keep is refused at the door rather than stored and then unreadable.
 */
export const DATA_LIMITS = { depth: 32, bytes: 64 * 1024 } as const;

/** Why `data` exceeds DATA_LIMITS, or null. Walks without recursion, so any depth is safe to check. */
export function dataLimitProblem(data: unknown): string | null {
  const stack: Array<{ v: unknown; depth: number }> = [{ v: data, depth: 1 }];
  while (stack.length > 0) {
    const { v, depth } = stack.pop()!;
    if (v === null || typeof v !== 'object') continue;
    if (depth > DATA_LIMITS.depth) return `is nested more than ${DATA_LIMITS.depth} levels deep`;
    for (const child of Object.values(v as Record<string, unknown>)) stack.push({ v: child, depth: depth + 1 });
  }
  const bytes = Buffer.byteLength(JSON.stringify(data));
  return bytes > DATA_LIMITS.bytes ? `is too large (${bytes} bytes as JSON; ${DATA_LIMITS.bytes} at most)` : null;
}

/** `data`: a JSON object within DATA_LIMITS. */
const dataObject = z.record(z.string(), z.unknown(), { error: 'must be a JSON object' }).superRefine((v, ctx) => {
  const problem = dataLimitProblem(v);
  if (problem) ctx.addIssue({ code: 'custom', message: problem });
});

/** What a notification script prints on stdout (one JSON object). Extra keys are kept. */
export const ScriptOutputSchema = z
  .looseObject({
    notify: z.boolean({ error: 'must be true or false (a JSON boolean, not a string)' }),
    title: z.string({ error: 'must be a string' }).nullish(),
    message: z.string({ error: 'must be a string' }).nullish(),
    image_path: z
      .string({ error: 'must be a string' })
      .refine((p) => p.startsWith('/'), 'must be an absolute path')
      .nullish(),
    cooldown: z.string({ error: 'must be a string such as "30m", "1h" or "1d"' }).nullish(),
    data: dataObject.nullish(),
    urgent: z.boolean({ error: 'must be true or false' }).nullish(),
    only_if_changed: z.boolean({ error: 'must be true or false' }).nullish(),
    send_resolved: z.boolean({ error: 'must be true or false' }).nullish(),
    to: z.array(z.string({ error: 'must be a name' }), { error: 'must be a list of names, e.g. ["me", "finance-alerts"]' }).nullish(),
  })
  .superRefine((out, ctx) => {
    if (out.notify && (typeof out.message !== 'string' || out.message.trim() === '')) {
      ctx.addIssue({ code: 'custom', path: ['message'], message: 'is required when notify is true' });
    }
  });
export type ScriptOutput = z.infer<typeof ScriptOutputSchema>;

function valueAt(input: unknown, path: ReadonlyArray<PropertyKey>): unknown {
  let v: unknown = input;
  for (const key of path) {
    if (v === null || typeof v !== 'object') return undefined;
    v = (v as Record<PropertyKey, unknown>)[key];
  }
  return v;
}

/**
 * Describes a zod error in one line for a person: `field: problem; field: problem`. Give
 * the parsed input so a missing field reads "is required" rather than its type message
 * (zod does not keep the input in its issues by default).
 */
export function describeZodError(err: z.ZodError, input?: unknown): string {
  return err.issues
    .map((i) => {
      const where = i.path.length > 0 ? i.path.join('.') : '';
      if (i.code === 'unrecognized_keys') return `unknown field${i.keys.length > 1 ? 's' : ''} ${i.keys.map((k) => `'${k}'`).join(', ')}`;
      if (i.code === 'invalid_type' && where !== '') {
        const missing = input !== undefined ? valueAt(input, i.path) === undefined : 'input' in i && i.input === undefined;
        if (missing) return `${where}: is required`;
      }
      return where ? `${where}: ${i.message}` : i.message;
    })
    .join('; ');
}

export const PARSE_MODES = ['Markdown', 'MarkdownV2', 'HTML', 'plain'] as const;
export type ParseMode = (typeof PARSE_MODES)[number];

const scriptName = z
  .string()
  .min(1)
  .max(255)
  .regex(/^[^/\0]+$/, 'must be a file name, not a path');
const parseMode = z.enum(PARSE_MODES, { error: `must be one of ${PARSE_MODES.join(', ')}` });

/** `to`: "me" and team chat names (see TEAM_NAME_RE in shared/teamChats.ts), each once. */
const destinations = z
  .array(z.string().regex(/^(me|[a-z0-9][a-z0-9_-]{1,63})$/, 'must be "me" or a team chat name such as finance-alerts'), { error: 'must be a list of names, e.g. ["me", "finance-alerts"]' })
  .min(1, 'must name at least one destination')
  .max(10, 'may name at most 10 destinations')
  .refine((l) => new Set(l).size === l.length, 'names a destination twice');

/** Content and routing fields shared by /send and /send_photo. */
const common = {
  user: UserNameSchema.optional(),
  title: z.string().max(1024, 'is too long (1024 characters at most)').optional(),
  message: z.string().max(65536, 'is too long (65536 characters at most)').optional(),
  parse_mode: parseMode.optional(),
  script: scriptName.optional(),
  data: dataObject.optional(),
  /** Break through quiet hours. */
  urgent: z.boolean({ error: 'must be true or false' }).optional(),
  /** Send only when `data` (or, without data, the text) differs from the last sent one. */
  only_if_changed: z.boolean({ error: 'must be true or false' }).optional(),
  /** The alert is a condition that will clear: its Telegram messages are kept for a later resolved notice. */
  send_resolved: z.boolean({ error: 'must be true or false' }).optional(),
  /** This is the resolved notice of the alert with this id (the caller's own): a reply to it. */
  resolves: z.string().min(1).max(100).regex(/^[A-Za-z0-9_-]+$/, 'must be a notification id').optional(),
  /** Destinations: "me" (the default) and team chat names. */
  to: destinations.optional(),
};

/** Body of POST /send. */
export const SendRequestSchema = z
  .strictObject({ ...common, text: z.string().max(65536, 'is too long (65536 characters at most)').optional() })
  .superRefine((b, ctx) => {
    const structured = b.title !== undefined || b.message !== undefined;
    if (structured && b.text !== undefined) {
      ctx.addIssue({ code: 'custom', message: "send either 'title'/'message' or 'text', not both" });
    } else if (!structured && b.text === undefined) {
      ctx.addIssue({ code: 'custom', message: "nothing to send: give 'message' (and optionally 'title'), or 'text'" });
    } else if ((b.text ?? `${b.title ?? ''}${b.message ?? ''}`).trim() === '') {
      ctx.addIssue({ code: 'custom', message: 'the notification is empty' });
    }
  });

/** Fields of POST /send_photo (JSON; or multipart with the file in field `photo`). */
export const SendPhotoRequestSchema = z
  .strictObject({
    ...common,
    photo_path: z.string().min(1).optional(),
    caption: z.string().max(65536, 'is too long (65536 characters at most)').optional(),
  })
  .superRefine((b, ctx) => {
    if ((b.title !== undefined || b.message !== undefined) && b.caption !== undefined) {
      ctx.addIssue({ code: 'custom', message: "send either 'title'/'message' or 'caption', not both" });
    }
  });
export type SendPhotoRequest = z.infer<typeof SendPhotoRequestSchema>;

/** What the Telegram channel did with a notification, as the send API reports it. */
export type TelegramChannelStatus = 'delivered' | 'queued' | 'not_linked' | 'refused' | 'failed' | 'suppressed' | 'held';

/** A successful send API answer. */
export interface SendResponse {
  ok: true;
  id: string;
  queued?: true;
  telegram: TelegramChannelStatus;
  /** Desktop connections reached, or 'pending' when not awaited. */
  desktop: number | 'pending' | 'unavailable';
  /** Not sent, by the analyst's rules: snoozed, muted, or data unchanged. */
  suppressed?: 'snoozed' | 'muted' | 'unchanged';
  /** Held for the digest at the end of quiet hours. */
  held?: 'quiet_hours';
  /** Until when the snooze, mute or quiet hours hold (ISO-8601 UTC). */
  until?: string;
  /** What only_if_changed found changed. */
  changes?: string[];
}

