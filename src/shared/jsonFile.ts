/**
 * Shared JSON files (the bot and the dashboard are separate processes): every
 * read-modify-write holds an inter-process lock, every write replaces the file atomically
 * (temp file, fsync, rename, fsync of the directory), and a file that cannot be parsed is
 * an error, never an empty file to overwrite.
 */
import { randomBytes } from 'node:crypto';
import { type Dirent, promises as fsp, type Stats, statSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import type { z } from 'zod';
import type { SharedDocument } from './documents.js';
import { withLock } from './lock.js';

/** A shared file exists but does not hold what it should; nothing was changed. */
export class CorruptFileError extends Error {
  constructor(readonly path: string, detail: string) {
    super(`${path} is unreadable (${detail}); it was left untouched. Repair or restore it, then retry.`);
    this.name = 'CorruptFileError';
  }
}

/**
 * Reads and parses a JSON file: undefined when it does not exist, CorruptFileError when it
 * cannot be parsed (the file is left alone), any other read error as it came.
 */
export async function readJsonIfExists(path: string): Promise<unknown> {
  let text: string;
  try {
    text = await fsp.readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    throw new CorruptFileError(path, `not valid JSON: ${(err as Error).message}`);
  }
}

/** Writes data to path atomically: readers see the old or the new file, never a part. */
export async function writeFileAtomic(path: string, data: string | Uint8Array, mode = 0o660): Promise<void> {
  const dir = dirname(path);
  const tmp = join(dir, `.${basename(path)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  const fh = await fsp.open(tmp, 'wx', mode);
  try {
    await fh.writeFile(data);
    await fh.chmod(mode);
    await fh.sync();
  } catch (err) {
    await fh.close();
    await fsp.rm(tmp, { force: true });
    throw err;
  }
  await fh.close();
  try {
    await fsp.rename(tmp, path);
  } catch (err) {
    await fsp.rm(tmp, { force: true });
    throw err;
  }
  await fsyncDir(dir);
}

/** What writeFileAtomic (and the outbox) name a temporary file: `.<name>.<pid>.<tag>.tmp`. */
const TEMP_NAME = /^\..+\.(\d+)\.[0-9a-f]+\.tmp$/;

/**
 * Removes temporary files that writers killed mid-write left in dir and its
 * subdirectories (depth levels down): those whose writer is gone. A file of a live writer
 * (the dashboard writes here too) is left alone; this process has written nothing yet, so
 * its own pid, reused from a dead one, marks an orphan too. Returns the paths removed.
 */
export async function removeOrphanTemps(dir: string, depth = 2): Promise<string[]> {
  const removed: string[] = [];
  let entries: Dirent[];
  try {
    entries = await fsp.readdir(dir, { withFileTypes: true });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return removed;
    throw err;
  }
  for (const e of entries) {
    const path = join(dir, e.name);
    if (e.isDirectory()) {
      if (depth > 0) removed.push(...(await removeOrphanTemps(path, depth - 1)));
      continue;
    }
    const m = TEMP_NAME.exec(e.name);
    if (!m || !e.isFile()) continue;
    const pid = Number(m[1]);
    if (pid !== process.pid && processAlive(pid)) continue;
    await fsp.rm(path, { force: true });
    removed.push(path);
  }
  return removed;
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** fsync of a directory, so a rename in it survives a crash. */
export async function fsyncDir(dir: string): Promise<void> {
  const dh = await fsp.open(dir, 'r');
  try {
    await dh.sync();
  } finally {
    await dh.close();
  }
}

/**
 * What changes when a file is replaced or edited: its inode, size, mtime or ctime (plain
 * numbers: the times in ms keep a fraction finer than a microsecond, and BigInt stats cost
 * every send their allocations).
 */
interface FileIdentity {
  dev: number;
  ino: number;
  size: number;
  mtimeMs: number;
  ctimeMs: number;
}

function identity(st: Stats): FileIdentity {
  return { dev: st.dev, ino: st.ino, size: st.size, mtimeMs: st.mtimeMs, ctimeMs: st.ctimeMs };
}

function sameFile(a: FileIdentity, b: Stats): boolean {
  return a.ino === b.ino && a.mtimeMs === b.mtimeMs && a.ctimeMs === b.ctimeMs && a.size === b.size && a.dev === b.dev;
}

/** A JSON document in one file, validated by a schema, shared between processes. */
export class JsonFile<T> implements SharedDocument<T> {
  /** The last parse, keyed by the file's identity: writers replace the file (new inode). */
  private cache: { key: FileIdentity; value: T } | null = null;

  constructor(
    readonly path: string,
    private readonly schema: z.ZodType<T>,
    private readonly empty: () => T,
  ) {}

  /** The file's name in its directory. */
  get name(): string {
    return basename(this.path);
  }

  /** The lock file guarding this document. */
  get lockPath(): string {
    return join(dirname(this.path), `.${basename(this.path)}.lock`);
  }

  /** Current contents; the empty value when the file does not exist yet. */
  async read(): Promise<T> {
    return this.pick((current) => current);
  }

  /** One part of the contents (copied, so the caller may keep and change it). */
  async pick<R>(select: (current: T) => R): Promise<R> {
    // Every send reads these files; parsing and validating them each time dominated the
    // bot's CPU, and so did opening them to find out they had not changed, and copying
    // all of a file to hand out one entry. One stat of the path tells whether it changed:
    // a replaced file has a new inode, an edited one a new size or mtime.
    const st = this.statNow();
    const value = st === null ? this.empty() : this.cache && sameFile(this.cache.key, st) ? this.cache.value : await this.load();
    return structuredClone(select(value));
  }

  /**
   * The file's stat now; null when the file does not exist. Synchronous on purpose: a
   * stat of a local file takes microseconds, while the thread-pool round trip of an
   * asynchronous one cost a send several times that (a burst of sends asks thousands of
   * times a second), and a read that starts after a writer's rename always sees it.
   */
  private statNow(): Stats | null {
    return statSync(this.path, { throwIfNoEntry: false }) ?? null;
  }

  /** Reads, parses and validates the file, and keeps the result under the identity of the file it read. */
  private async load(): Promise<T> {
    let fh: fsp.FileHandle;
    try {
      fh = await fsp.open(this.path, 'r');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return this.empty();
      throw err;
    }
    let text: string;
    let key: FileIdentity;
    try {
      const st = await fh.stat();
      if (this.cache && sameFile(this.cache.key, st)) return this.cache.value;
      key = identity(st);
      text = await fh.readFile('utf8');
    } finally {
      await fh.close();
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch (err) {
      throw new CorruptFileError(this.path, `not valid JSON: ${(err as Error).message}`);
    }
    const result = this.schema.safeParse(parsed);
    if (!result.success) {
      const issue = result.error.issues[0];
      const where = issue && issue.path.length > 0 ? ` at ${issue.path.join('.')}` : '';
      throw new CorruptFileError(this.path, `unexpected content${where}: ${issue?.message ?? 'invalid'}`);
    }
    this.cache = { key, value: result.data };
    return result.data;
  }

  /**
   * Read-modify-write under the lock. `change` gets the current value and returns the
   * next one plus a result; returning `undefined` as next leaves the file alone.
   */
  async update<R>(change: (current: T) => { next?: T; result: R } | Promise<{ next?: T; result: R }>): Promise<R> {
    return withLock(this.lockPath, async () => {
      const current = await this.read();
      const { next, result } = await change(current);
      if (next !== undefined) {
        await writeFileAtomic(this.path, `${JSON.stringify(next, null, 2)}\n`);
      }
      return result;
    });
  }
}
