/** Reading what a script printed: one JSON object that follows the script contract. */
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
  if (!result.success) return { ok: false, error: describeZodError(result.error) };
  return { ok: true, output: result.data, raw: value as Record<string, unknown> };
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
      warning: `cooldown '${excerpt(asked, 40)}' is not valid (use <n>s, <n>m, <n>h or <n>d such as 30m, 1h, 1d); using the default ${DEFAULT_COOLDOWN}`,
    };
  }
  return { text: asked.trim(), seconds };
}
