/**
 * Outbox records that could not be read (a journal line whose checksum or JSON is wrong, a
 * record that no longer fits the schema, an unreadable re-queued file) become dead letters
 * of their own, `outbox/dead/<id>.damaged`, beside the dead notifications: the operator
 * sees them in `notify-bot queue list`, reads them with `queue show <id>`, and the queue
 * goes on without them.
 *
 * The id is derived from where the record was found and what it held, so finding the same
 * damage again (a restart before the journal was compacted) keeps the one letter it has
 * and reports nothing new: a damaged record is moved and logged once.
 */
import { createHash } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { writeFileAtomic } from '../../shared/jsonFile.js';

/** What the outbox found and could not read. */
export interface Damage {
  /** Where: `journal seg-000000000003.log line 7`, `queue/<name>`. */
  source: string;
  /** Why it could not be read. */
  reason: string;
  /** The text found (at most the first 64 KiB). */
  text: string;
}

/** A damaged record kept as a dead letter. */
export interface DamagedLetter extends Damage {
  id: string;
  /** When it was moved to the dead letters (ISO-8601). */
  found_at: string;
}

const DamagedLetterSchema = z.object({ id: z.string(), found_at: z.string(), source: z.string(), reason: z.string(), text: z.string() });

const SUFFIX = '.damaged';
const MAX_TEXT = 64 * 1024;

/** The damaged records of one dead-letter directory. */
export class DamagedLetters {
  constructor(readonly deadDir: string) {}

  /** The dead letter's id for a piece of damage (the same damage, the same id). */
  static idOf(d: Pick<Damage, 'source' | 'text'>): string {
    return `damaged-${createHash('sha256').update(d.source).update('\0').update(d.text).digest('hex').slice(0, 16)}`;
  }

  /** The file a damaged letter is kept in. */
  pathOf(id: string): string {
    return join(this.deadDir, `${id}${SUFFIX}`);
  }

  /**
   * Keeps each piece of damage as a dead letter (durably); returns those that were not
   * kept already, for the caller to report.
   */
  async keep(found: readonly Damage[], now = Date.now()): Promise<DamagedLetter[]> {
    const added: DamagedLetter[] = [];
    if (found.length === 0) return added;
    await fsp.mkdir(this.deadDir, { recursive: true, mode: 0o770 });
    for (const d of found) {
      const text = d.text.length > MAX_TEXT ? d.text.slice(0, MAX_TEXT) : d.text;
      const id = DamagedLetters.idOf({ source: d.source, text });
      const path = this.pathOf(id);
      const known = await fsp.stat(path).then(
        () => true,
        () => false,
      );
      if (known) continue;
      const letter: DamagedLetter = { id, found_at: new Date(now).toISOString(), source: d.source, reason: d.reason, text };
      await writeFileAtomic(path, `${JSON.stringify(letter, null, 2)}\n`, 0o660);
      added.push(letter);
    }
    return added;
  }

  /** Every damaged letter, oldest first; a file that cannot be read is listed with that reason. */
  async list(): Promise<DamagedLetter[]> {
    let names: string[];
    try {
      names = await fsp.readdir(this.deadDir);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw err;
    }
    const out: DamagedLetter[] = [];
    for (const n of names) {
      if (!n.endsWith(SUFFIX) || n.startsWith('.')) continue;
      const id = n.slice(0, -SUFFIX.length);
      let text: string;
      try {
        text = await fsp.readFile(join(this.deadDir, n), 'utf8');
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue;
        throw err;
      }
      try {
        out.push(DamagedLetterSchema.parse(JSON.parse(text)));
      } catch {
        out.push({ id, found_at: '', source: `dead/${n}`, reason: 'this file itself cannot be read', text: text.slice(0, MAX_TEXT) });
      }
    }
    return out.sort((a, b) => a.found_at.localeCompare(b.found_at) || a.id.localeCompare(b.id));
  }
}
