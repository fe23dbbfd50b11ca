/**
 * Reading settings from the environment, as the registry (settings.ts) declares them:
 * every problem is collected and reported together, naming the variable, what it should
 * be and what it was. Dependency-free (see settings.ts).
 */
import { hostname } from 'node:os';
import { LOG_LEVELS, PROGRAMS, type Program, SETTINGS, type SettingName, type SettingSpec, type SettingValue } from './settings.js';
import { DURATION_FORMS, parseByteSize, parseDurationMs, SIZE_FORMS } from './units.js';

/** A configuration problem; its message lists every bad variable. */
export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`Invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

const TRUE = new Set(['true', '1', 'yes']);
const FALSE = new Set(['false', '0', 'no']);

/** A value as read, or the reason it was refused. */
type Parsed = { value: unknown } | { problem: string };

/** Reads a setting's text as its kind; bounds included. */
export function parseSetting(name: string, spec: SettingSpec, text: string): Parsed {
  const bad = (should: string): Parsed => ({ problem: `${name} must be ${should} (got '${text}')` });
  const within = (n: number, parse: (t: string) => number | null, what: string, bounds: SettingSpec = spec): Parsed => {
    const min = bounds.min !== undefined ? parse(bounds.min) : null;
    const max = bounds.max !== undefined ? parse(bounds.max) : null;
    if ((min !== null && n < min) || (max !== null && n > max)) {
      const range = min !== null && max !== null ? `from ${bounds.min} to ${bounds.max}` : min !== null ? `at least ${bounds.min}` : `at most ${bounds.max}`;
      return bad(`${what} ${range}`);
    }
    return { value: n };
  };
  switch (spec.kind) {
    case 'text':
      return { value: text };
    case 'url': {
      try {
        const u = new URL(text);
        if (u.protocol !== 'http:' && u.protocol !== 'https:') return bad('an http:// or https:// URL');
      } catch {
        return bad('an http:// or https:// URL');
      }
      return { value: text.replace(/\/+$/, '') };
    }
    case 'list':
      return { value: text.split(',').map((s) => s.trim()).filter((s) => s !== '') };
    case 'int':
    case 'port': {
      if (!/^-?\d+$/.test(text) || !Number.isSafeInteger(Number(text))) return bad('a whole number');
      const bounds = spec.kind === 'port' ? { ...spec, min: spec.min ?? '0', max: spec.max ?? '65535' } : spec;
      return within(Number(text), (t) => Number(t), 'a whole number', bounds);
    }
    case 'duration': {
      const ms = parseDurationMs(text);
      if (ms === null) return bad(`a duration such as ${DURATION_FORMS}`);
      return within(ms, parseDurationMs, 'a duration');
    }
    case 'size': {
      const bytes = parseByteSize(text);
      if (bytes === null) return bad(`a size such as ${SIZE_FORMS}`);
      return within(bytes, parseByteSize, 'a size');
    }
    case 'bool': {
      const v = text.toLowerCase();
      if (TRUE.has(v)) return { value: true };
      if (FALSE.has(v)) return { value: false };
      return bad('true or false');
    }
    case 'level':
      return (LOG_LEVELS as readonly string[]).includes(text) ? { value: text } : bad(`one of ${LOG_LEVELS.join(', ')}`);
  }
}

/**
 * Typed access to one program's settings over an environment: `get(name)` parses the
 * variable (or the registry's default) as its kind, and collects problems instead of
 * throwing one by one; `done()` throws them all. Reading a setting the registry does not
 * list for this program is a programming error (it would be missing from `--help`).
 */
export class EnvReader {
  private readonly problems: string[] = [];
  private readonly seen = new Set<SettingName>();

  constructor(
    private readonly program: Program,
    private readonly env: NodeJS.ProcessEnv = process.env,
  ) {}

  /** The setting's value: the variable, else its default; undefined when neither. */
  get<N extends SettingName>(name: N): SettingValue<N> {
    const spec: SettingSpec = SETTINGS[name];
    if (!spec.programs.includes(this.program)) {
      throw new Error(`${PROGRAMS[this.program]} reads ${name}, which settings.ts does not list for it`);
    }
    this.seen.add(name);
    const raw = this.env[name]?.trim();
    const fallback = (): unknown => {
      if (spec.default !== undefined) return (parseSetting(name, spec, spec.default) as { value: unknown }).value;
      return spec.kind === 'list' ? [] : undefined;
    };
    if (raw === undefined || raw === '') {
      if (spec.required?.includes(this.program)) this.problems.push(`${name} is not set: ${spec.hint ?? spec.meaning}`);
      return fallback() as SettingValue<N>;
    }
    const parsed = parseSetting(name, spec, raw);
    if ('problem' in parsed) {
      this.problems.push(parsed.problem);
      return fallback() as SettingValue<N>;
    }
    return parsed.value as SettingValue<N>;
  }

  /** The values of the secret settings read so far (to keep them out of logs). */
  secrets(): string[] {
    return [...this.seen].filter((n) => (SETTINGS[n] as SettingSpec).secret).map((n) => this.env[n]?.trim() ?? '').filter((v) => v !== '');
  }

  /** The settings read so far (the tests compare them with the registry). */
  read(): SettingName[] {
    return [...this.seen];
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

/** Settings the bot and the dashboard share. */
export interface CommonConfig {
  dataDir: string;
  socketPath: string;
  /** PostgreSQL for the shared state of a fleet; unset = the data files. */
  databaseUrl: string | undefined;
  /** This replica's name in logs, /health and metrics. */
  instance: string;
}

/** NOTIFY_DATABASE_URL, checked for shape (never echoed: it may hold a password). */
function databaseUrl(r: EnvReader): string | undefined {
  const v = r.get('NOTIFY_DATABASE_URL');
  if (v === undefined) return undefined;
  const ok = /^postgres(?:ql)?:\/\/[^\s]*$/.test(v);
  if (!ok) r.problem('NOTIFY_DATABASE_URL must be a PostgreSQL URL such as postgres://user:password@host/db or postgres://user@/db?host=/run/postgresql');
  return ok ? v : undefined;
}

/** Reads a fleet's database and this replica's name. */
export function readFleetConfig(r: EnvReader): Pick<CommonConfig, 'databaseUrl' | 'instance'> {
  return { databaseUrl: databaseUrl(r), instance: r.get('NOTIFY_INSTANCE') ?? hostname() };
}

/** Reads the data directory, the send API socket, the database and the replica's name. */
export function readCommonConfig(r: EnvReader): CommonConfig {
  return { dataDir: r.get('NOTIFY_DATA_DIR'), socketPath: r.get('NOTIFY_SOCKET'), ...readFleetConfig(r) };
}
