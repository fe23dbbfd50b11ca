/**
 * The gateway's copy of the revoked desktop token ids, kept from `desktop_tokens.json`
 * (written by the dashboard). The file is re-read when it changes: at every authentication
 * (a stat, so a revoked token is refused at once) and on the periodic sweep. A missing file
 * means nothing is revoked; an unreadable one is reported loudly and the last good list kept.
 */
import { promises as fsp } from 'node:fs';
import type { Logger } from 'pino';
import type { DesktopTokenStore, RevocationCheck } from '../shared/desktopTokens.js';
import { JsonFile } from '../shared/jsonFile.js';

/** Identifies one version of the file without reading it (rename-on-write gives a new inode). */
function signatureOf(st: { ino: number; size: number; mtimeMs: number }): string {
  return `${st.ino}:${st.size}:${st.mtimeMs}`;
}

/** Revoked token ids, refreshed from the shared file. */
export class RevocationWatcher implements RevocationCheck {
  private revoked = new Set<string>();
  /** Signature of the version the set was read from ('missing' when there was no file). */
  private loadedSignature: string | null = null;
  /** Signature of a version that could not be read, and why. */
  private failure: { signature: string; message: string } | null = null;
  private inflight: Promise<void> | null = null;

  constructor(
    private readonly store: DesktopTokenStore,
    private readonly logger: Logger,
    /** Called with the new set whenever it changes. */
    private readonly onChange: (revoked: ReadonlySet<string>) => void = () => {},
  ) {}

  /** True when the token id is revoked, after picking up any change to the file. */
  async isRevoked(jti: string): Promise<boolean> {
    await this.refresh();
    return this.revoked.has(jti);
  }

  /** True when the token id is in the last list read (no I/O). */
  has(jti: string): boolean {
    return this.revoked.has(jti);
  }

  /** Whether the last attempt to read the file failed (the list in use may be stale). */
  get stale(): boolean {
    return this.failure !== null;
  }

  /**
   * Re-reads the file if it changed since the last read. Concurrent callers share one read.
   * `remind` repeats the error when the file is still unreadable (the periodic sweep uses it).
   */
  async refresh(opts: { remind?: boolean } = {}): Promise<void> {
    if (!this.inflight) {
      this.inflight = this.load().finally(() => {
        this.inflight = null;
      });
    }
    await this.inflight;
    if (opts.remind && this.failure) this.reportFailure(this.failure.message);
  }

  private async load(): Promise<void> {
    const file = this.store.file;
    if (!(file instanceof JsonFile)) {
      // Kept in the database (a fleet): one query, no file to stat.
      try {
        const ids = await this.store.revokedIds();
        if (this.failure) this.logger.info({ revoked: ids.size }, 'desktop tokens readable again');
        this.failure = null;
        this.replace(ids);
      } catch (err) {
        this.fail('database', (err as Error).message);
      }
      return;
    }
    const path = file.path;
    let signature: string;
    try {
      signature = signatureOf(await fsp.stat(path));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
        this.failure = null;
        if (this.loadedSignature !== 'missing') {
          this.loadedSignature = 'missing';
          this.replace(new Set());
        }
        return;
      }
      this.fail(`stat:${(err as Error).message}`, (err as Error).message);
      return;
    }
    if (signature === this.loadedSignature || signature === this.failure?.signature) return;
    try {
      const ids = await this.store.revokedIds();
      this.loadedSignature = signature;
      if (this.failure) this.logger.info({ file: path, revoked: ids.size }, 'desktop token file readable again');
      this.failure = null;
      this.replace(ids);
    } catch (err) {
      this.fail(signature, (err as Error).message);
    }
  }

  private fail(signature: string, message: string): void {
    const isNew = this.failure?.signature !== signature;
    this.failure = { signature, message };
    if (isNew) this.reportFailure(message);
  }

  private reportFailure(message: string): void {
    this.logger.error(
      { file: this.store.file.name, err: message, revoked_in_use: this.revoked.size },
      'CANNOT READ THE DESKTOP TOKEN FILE: revocations made since the last good read are NOT enforced; keeping the last good list',
    );
  }

  private replace(ids: Set<string>): void {
    const changed = ids.size !== this.revoked.size || [...ids].some((id) => !this.revoked.has(id));
    this.revoked = ids;
    if (changed) this.onChange(ids);
  }
}
