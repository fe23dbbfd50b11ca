/**
 * Reading configuration from the environment: every problem is collected and reported
 * together, naming the variable, what it should be and what it was.
 */
import { hostname } from 'node:os';

/** A configuration problem; its message lists every bad variable. */
export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`Invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

const DURATION_RE = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)?$/;
const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** Parses `500ms`, `30s`, `5m`, `1h`, `1d` (a bare number means seconds) into milliseconds. */
export function parseDurationMs(text: string): number | null {
  const m = DURATION_RE.exec(text.trim());
  if (!m) return null;
  return Math.round(Number(m[1]) * (UNIT_MS[m[2] ?? 's'] ?? 1000));
}

/** Typed accessors over an environment that collect problems instead of throwing one by one. */
export class EnvReader {
  private readonly problems: string[] = [];

  constructor(private readonly env: NodeJS.ProcessEnv = process.env) {}

  private raw(name: string): string | undefined {
    const v = this.env[name];
    return v === undefined || v.trim() === '' ? undefined : v.trim();
  }

  /** A string; `fallback` when unset. */
  string(name: string, fallback: string): string {
    return this.raw(name) ?? fallback;
  }

  /** A string that may be unset. */
  optional(name: string): string | undefined {
    return this.raw(name);
  }

  /** A string that must be set; `hint` says what to put there. */
  required(name: string, hint: string): string {
    const v = this.raw(name);
    if (v === undefined) {
      this.problems.push(`${name} is not set: ${hint}`);
      return '';
    }
    return v;
  }

  /** An integer within [min, max]. */
  int(name: string, fallback: number, min = 0, max = Number.MAX_SAFE_INTEGER): number {
    const v = this.raw(name);
    if (v === undefined) return fallback;
    const n = Number(v);
    if (!Number.isInteger(n) || n < min || n > max) {
      this.problems.push(`${name} must be a whole number from ${min} to ${max} (got '${v}')`);
      return fallback;
    }
    return n;
  }

  /** A positive number (fractions allowed) within [min, max]. */
  number(name: string, fallback: number, min = 0, max = Number.MAX_VALUE): number {
    const v = this.raw(name);
    if (v === undefined) return fallback;
    const n = Number(v);
    if (!Number.isFinite(n) || n < min || n > max) {
      this.problems.push(`${name} must be a number from ${min} to ${max} (got '${v}')`);
      return fallback;
    }
    return n;
  }

  /** A duration like `30s`, `5m`, `500ms` (bare numbers are seconds), in milliseconds. */
  durationMs(name: string, fallbackMs: number): number {
    const v = this.raw(name);
    if (v === undefined) return fallbackMs;
    const ms = parseDurationMs(v);
    if (ms === null) {
      this.problems.push(`${name} must be a duration such as 500ms, 30s, 5m, 1h or 1d (got '${v}')`);
      return fallbackMs;
    }
    return ms;
  }

  /** A comma-separated list; empty when unset. */
  list(name: string): string[] {
    const v = this.raw(name);
    if (v === undefined) return [];
    return v
      .split(',')
      .map((s) => s.trim())
      .filter((s) => s !== '');
  }

  /** An http(s) URL. */
  url(name: string, fallback: string): string {
    const v = this.raw(name) ?? fallback;
    try {
      const u = new URL(v);
      if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new Error('protocol');
    } catch {
      this.problems.push(`${name} must be an http:// or https:// URL (got '${v}')`);
    }
    return v.replace(/\/+$/, '');
  }

  /** true/false (also 1/0, yes/no); `fallback` when unset. */
  bool(name: string, fallback: boolean): boolean {
    const v = this.raw(name)?.toLowerCase();
    if (v === undefined) return fallback;
    if (v === 'true' || v === '1' || v === 'yes') return true;
    if (v === 'false' || v === '0' || v === 'no') return false;
    this.problems.push(`${name} must be true or false (got '${v}')`);
    return fallback;
  }

  /** A TCP port. */
  port(name: string, fallback: number): number {
    return this.int(name, fallback, 0, 65535);
  }

  /** Records a problem found by the caller's own checks. */
  problem(message: string): void {
    this.problems.push(message);
  }

  /** Throws a ConfigError listing every problem, if there were any. */
  done(): void {
    if (this.problems.length > 0) throw new ConfigError(this.problems);
  }
}

/** Settings every service shares. */
export interface CommonConfig {
  dataDir: string;
  socketPath: string;
  gatewaySocketPath: string;
  /** PostgreSQL for the shared state of a fleet; unset = the data files. */
  databaseUrl: string | undefined;
  /** This replica's name in logs, /health and metrics. */
  instance: string;
}

/** NOTIFY_DATABASE_URL, checked for shape (never echoed: it may hold a password). */
function databaseUrl(r: EnvReader): string | undefined {
  const v = r.optional('NOTIFY_DATABASE_URL');
  if (v === undefined) return undefined;
  const ok = /^postgres(?:ql)?:\/\/[^\s]*$/.test(v);
  if (!ok) r.problem('NOTIFY_DATABASE_URL must be a PostgreSQL URL such as postgres://user:password@host/db or postgres://user@/db?host=/run/postgresql');
  return ok ? v : undefined;
}

/** Reads the shared settings (data directory and the two sockets). */
export function readCommonConfig(r: EnvReader): CommonConfig {
  return {
    dataDir: r.string('NOTIFY_DATA_DIR', '/data/notifications'),
    socketPath: r.string('NOTIFY_SOCKET', '/run/notify-bot/bot.sock'),
    gatewaySocketPath: r.string('NOTIFY_GATEWAY_SOCKET', '/run/ws-gateway/ws.sock'),
    databaseUrl: databaseUrl(r),
    instance: r.string('NOTIFY_INSTANCE', hostname()),
  };
}
