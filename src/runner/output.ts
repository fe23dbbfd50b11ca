/** Reading what a script printed: one JSON object that follows the script contract. */
import { z } from 'zod';
import { DEFAULT_COOLDOWN, describeZodError, parseCooldownSeconds, ScriptOutputSchema, type ScriptOutput } from '../shared/contract.js';

/** A script's output, validated, or why it is not acceptable (for the analyst). */
export type ParsedOutput =
  | { ok: true; output: ScriptOutput; raw: Record<string, unknown> }
  | { ok: false; error: string };

function excerpt(text: string, max = 80): string {
  const flat = text.replace(/\s+/g, ' ').trim();
  return flat.length > max ? `${flat.slice(0, max)}…` : flat;
}

function describeType(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  return `a ${typeof value}`;
}

/** Parses stdout (surrounding whitespace allowed) into the script contract's object. */
export function parseScriptOutput(stdout: string): ParsedOutput {
  const text = stdout.trim();
  if (text === '') {
    return { ok: false, error: 'printed nothing on stdout; print one JSON object such as {"notify": false}' };
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    let hint = '';
    const lastLine = text.split('\n').pop() ?? '';
    if (lastLine !== text) {
      try {
        JSON.parse(lastLine);
        hint = '; the last line is JSON, so something else was printed before it: print debug output to stderr';
      } catch {
        // no better hint
      }
    }
    return { ok: false, error: `not JSON: ${(err as Error).message} (stdout began: ${excerpt(text)})${hint}` };
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return { ok: false, error: `not a JSON object: printed ${describeType(value)} (${excerpt(text)}); print one object such as {"notify": false}` };
  }
  // reportInput: describeZodError tells a wrong type from a missing field by the input.
  const result = ScriptOutputSchema.safeParse(value, { reportInput: true });
  if (!result.success) return { ok: false, error: describeZodError(markMissing(result.error, value as Record<string, unknown>)) };
  return { ok: true, output: result.data, raw: value as Record<string, unknown> };
}

/**
 * A field with a custom type message (`notify: must be true or false`) reports that message
 * even when the field is missing, and JSON leaves no `input` to tell the two apart; so a
 * type issue on a top-level field the object does not have becomes `is required`.
 */
function markMissing(err: z.ZodError, value: Record<string, unknown>): z.ZodError {
  const missing = (issue: z.core.$ZodIssue): boolean => {
    const [key, ...rest] = issue.path;
    return issue.code === 'invalid_type' && typeof key === 'string' && rest.length === 0 && !(key in value);
  };
  if (!err.issues.some(missing)) return err;
  return new z.ZodError(err.issues.map((issue) => (missing(issue) ? { ...issue, message: 'is required' } : issue)));
}

/** The cooldown a script asked for, in seconds, with a warning when it was not valid. */
export interface EffectiveCooldown {
  text: string;
  seconds: number;
  warning?: string;
}

/** The script's cooldown, or the default (with a warning) when it is missing or invalid. */
export function effectiveCooldown(output: ScriptOutput): EffectiveCooldown {
  const asked = output.cooldown;
  const fallback = { text: DEFAULT_COOLDOWN, seconds: parseCooldownSeconds(DEFAULT_COOLDOWN)! };
  if (asked === undefined || asked === null) return fallback;
  const seconds = parseCooldownSeconds(asked);
  if (seconds === null) {
    return {
      ...fallback,
      warning: `cooldown '${excerpt(asked, 40)}' is not valid (a duration such as 30m, 1h or 1d); using the default ${DEFAULT_COOLDOWN}`,
    };
  }
  return { text: asked.trim(), seconds };
}
