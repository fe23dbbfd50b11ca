/**
 * A log file that never holds the program up. Lines are appended asynchronously from a
 * bounded buffer; when the file cannot take them (a full disk, a quota, an I/O error) they
 * are dropped and counted instead of being retried in a loop, the program goes on, and a
 * probe every few seconds resumes the file by itself once it takes writes again, starting
 * with a line that says how many were lost and why. The same lines still reach stdout.
 */
import { closeSync, openSync, write, writeSync } from 'node:fs';

/** Settings of a LogFile (defaults suit a service). */
export interface LogFileOptions {
  /** Lines waiting for the disk at most, in bytes; more are dropped. */
  maxBufferBytes?: number;
  /** How often to try the file again after a failed write. */
  retryMs?: number;
}

/** What a LogFile can say about itself, for health checks. */
export interface LogFileState {
  ok: boolean;
  /** Why the last write failed (while not ok). */
  error?: string;
  /** Lines lost since the file last took a write. */
  dropped: number;
}

/** A pino destination appending to one file without ever blocking the event loop. */
export class LogFile {
  private fd: number | null;
  private pending: string[] = [];
  private pendingBytes = 0;
  private writing = false;
  private dropped = 0;
  private failure: NodeJS.ErrnoException | null = null;
  private retryTimer: NodeJS.Timeout | null = null;
  private readonly maxBufferBytes: number;
  private readonly retryMs: number;

  constructor(
    readonly path: string,
    opts: LogFileOptions = {},
  ) {
    this.maxBufferBytes = opts.maxBufferBytes ?? 4 * 1024 * 1024;
    this.retryMs = opts.retryMs ?? 5000;
    this.fd = openSync(path, 'a', 0o660);
  }

  /** How the file fares. */
  get state(): LogFileState {
    return this.failure ? { ok: false, error: `${this.failure.code ?? 'error'}: ${this.failure.message}`, dropped: this.dropped } : { ok: true, dropped: this.dropped };
  }

  /** Queues one line (pino's destination interface). Never throws, never waits. */
  write(line: string): boolean {
    if (this.fd === null) return true;
    if (this.failure || this.pendingBytes + line.length > this.maxBufferBytes) {
      this.dropped += 1;
      return true;
    }
    this.pending.push(line);
    this.pendingBytes += line.length;
    if (!this.writing) this.writeNext();
    return true;
  }

  private writeNext(): void {
    if (this.fd === null || this.pending.length === 0 || this.failure) return;
    const lines = this.pending.length;
    const buf = Buffer.from(this.pending.join(''));
    this.pending = [];
    this.pendingBytes = 0;
    this.writing = true;
    const fd = this.fd;
    const from = (offset: number): void => {
      write(fd, buf, offset, buf.length - offset, null, (err, n) => {
        if (err) {
          this.writing = false;
          this.fail(err, lines);
        } else if (offset + n < buf.length) from(offset + n);
        else {
          this.writing = false;
          this.writeNext();
        }
      });
    };
    from(0);
  }

  private fail(err: NodeJS.ErrnoException, lines: number): void {
    this.failure = err;
    this.dropped += lines + this.pending.length;
    this.pending = [];
    this.pendingBytes = 0;
    this.scheduleRetry();
  }

  private scheduleRetry(): void {
    if (this.retryTimer || this.fd === null) return;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      this.probe();
    }, this.retryMs);
    this.retryTimer.unref();
  }

  /** Tries the file again with a line saying what was lost; resumes when it is taken. */
  private probe(): void {
    if (this.fd === null || !this.failure) return;
    const note = `${JSON.stringify({ level: 40, time: new Date().toISOString(), msg: `log file resumed; ${this.dropped} line(s) were dropped while it could not be written (${this.failure.code ?? this.failure.message})` })}\n`;
    const buf = Buffer.from(note);
    write(this.fd, buf, 0, buf.length, null, (err, n) => {
      if (err || n < buf.length) {
        if (err) this.failure = err;
        this.scheduleRetry();
        return;
      }
      this.failure = null;
      this.dropped = 0;
      this.writeNext();
    });
  }

  /** Best effort at exit: what is still buffered, written synchronously, errors ignored. */
  flushSync(): void {
    if (this.fd === null || this.failure || this.writing || this.pending.length === 0) return;
    try {
      writeSync(this.fd, this.pending.join(''));
    } catch {
      // Nothing more can be done at exit.
    }
    this.pending = [];
    this.pendingBytes = 0;
  }

  /** pino's flush hook: asynchronous writes are already under way. */
  flush(cb?: (err?: Error) => void): void {
    cb?.();
  }

  /** Closes the file. */
  end(): void {
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.flushSync();
    if (this.fd !== null && !this.writing) closeSync(this.fd);
    this.fd = null;
  }
}
