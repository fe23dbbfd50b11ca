/**
 * The one duration parser and the one size parser: settings, the script contract's
 * `cooldown`, and durations typed in the bot or the dashboard all go through these.
 * Dependency-free, so every program can import it cheaply.
 */

const DURATION_RE = /^(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?$/;
const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** The forms a duration takes, for messages. */
export const DURATION_FORMS = '500ms, 30s, 5m, 1h or 1d (a bare number is seconds)';

/** Parses `500ms`, `30s`, `5m`, `1h`, `1d`, `1.5h` (a bare number means seconds) into milliseconds; null if invalid. */
export function parseDurationMs(text: string): number | null {
  const m = DURATION_RE.exec(text.trim());
  if (!m) return null;
  return Math.round(Number(m[1]) * (UNIT_MS[m[2] ?? 's'] ?? 1000));
}

const SIZE_RE = /^(\d+(?:\.\d+)?)\s*(b|k|kb|kib|m|mb|mib|g|gb|gib)?$/i;
const MIB = 1024 * 1024;

/** The forms a size takes, for messages. */
export const SIZE_FORMS = '1048576, 512KiB, 1MiB or 2M (binary units)';

/** Parses `1048576`, `512k`, `512KiB`, `1MiB`, `2M` (binary units) into bytes; null if invalid. */
export function parseByteSize(text: string): number | null {
  const m = SIZE_RE.exec(text.trim());
  if (!m) return null;
  const unit = (m[2] ?? 'b').toLowerCase()[0];
  const factor = unit === 'k' ? 1024 : unit === 'm' ? MIB : unit === 'g' ? 1024 * MIB : 1;
  return Math.floor(Number(m[1]) * factor);
}
