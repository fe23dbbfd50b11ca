/** Builds a Telegram text with explicit entities, so any characters can appear in it. */
import type { Entity } from './render.js';

/** Accumulates text and entities (offsets in UTF-16 units, as Telegram counts). */
export class TextBuilder {
  text = '';
  readonly entities: Entity[] = [];

  /** Appends plain text. */
  add(s: string): this {
    this.text += s;
    return this;
  }

  /** Appends text with an entity over it. */
  styled(s: string, type: 'bold' | 'italic' | 'code'): this {
    if (s.length > 0) this.entities.push({ type, offset: this.text.length, length: s.length });
    this.text += s;
    return this;
  }

  /** Appends a newline. */
  line(): this {
    this.text += '\n';
    return this;
  }
}

/** "5 min ago", "3 h ago", "2 days ago" (or "in ..." for the future). */
export function relativeTime(iso: string, now: number): string {
  const t = Date.parse(iso);
  if (Number.isNaN(t)) return iso;
  const diff = Math.round((now - t) / 1000);
  const abs = Math.abs(diff);
  const span = abs < 60 ? `${abs} s` : abs < 3600 ? `${Math.round(abs / 60)} min` : abs < 86400 ? `${Math.round(abs / 3600)} h` : `${Math.round(abs / 86400)} d`;
  return diff >= 0 ? `${span} ago` : `in ${span}`;
}

/** "2026-11-24 14:05 UTC". */
export function shortUtc(iso: string): string {
  const t = Date.parse(iso);
  if (Number.isNaN(t)) return iso;
  return `${new Date(t).toISOString().slice(0, 16).replace('T', ' ')} UTC`;
}

/** "Mon 09:00 Europe/Prague": the wall-clock time in a time zone, or null for UTC or an unknown zone. */
export function zoneTime(iso: string, zone: string | undefined): string | null {
  const t = Date.parse(iso);
  if (Number.isNaN(t) || zone === undefined || zone === 'UTC' || zone === 'Etc/UTC') return null;
  try {
    const f = new Intl.DateTimeFormat('en-GB', { timeZone: zone, weekday: 'short', hour: '2-digit', minute: '2-digit', hourCycle: 'h23' });
    return `${f.format(t).replace(',', '')} ${zone}`;
  } catch {
    return null;
  }
}
