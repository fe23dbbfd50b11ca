/**
 * The text generated from the settings registry: each program's `--help` list, the
 * README's configuration tables and the env template's tunables block. `npm run gen`
 * (scripts/gen.mjs) writes the generated files; test/settings.test.ts fails while they
 * are stale.
 */
import { allSettings, PROGRAMS, type Program, type SettingSpec, settingsOf } from './settings.js';

/** The default as shown to people: the value, or what being unset means. */
export function shownDefault(spec: SettingSpec, program?: Program): string {
  if (spec.required && (program === undefined ? spec.required.length > 0 : spec.required.includes(program))) {
    if (program !== undefined || spec.required.length === spec.programs.length) return 'required';
    return `required by ${spec.required.map((p) => PROGRAMS[p]).join(', ')}${spec.unset ? `; else ${spec.unset}` : ''}`;
  }
  if (spec.default !== undefined) return spec.default;
  if (spec.unset !== undefined) return spec.unset;
  return spec.kind === 'list' ? 'empty' : 'none';
}

/** What values are accepted, for the README: kind and bounds. */
export function acceptedValues(spec: SettingSpec): string {
  const range = spec.min !== undefined && spec.max !== undefined ? ` ${spec.min} to ${spec.max}` : spec.min !== undefined ? ` >= ${spec.min}` : spec.max !== undefined ? ` <= ${spec.max}` : '';
  switch (spec.kind) {
    case 'text':
      return spec.secret ? 'text, secret' : 'text';
    case 'url':
      return 'http(s) URL';
    case 'list':
      return 'comma list';
    case 'int':
      return `whole number${range}`;
    case 'port':
      return 'port';
    case 'duration':
      return `duration${range}`;
    case 'size':
      return `size${range}`;
    case 'bool':
      return 'true/false';
    case 'level':
      return 'log level';
  }
}

/** The "Environment variables" list of a program's `--help`. */
export function settingsHelp(program: Program): string {
  const rows = settingsOf(program);
  const width = Math.max(...rows.map(([n]) => n.length));
  const lines = rows.map(([name, spec]) => `  ${name.padEnd(width)}  [${shownDefault(spec, program)}]\n  ${' '.repeat(width)}  ${spec.meaning}${spec.secret ? '; never logged' : ''}`);
  return [
    'Environment variables [default]. Durations: 500ms, 30s, 5m, 1h, 1d (a bare number is',
    'seconds). Sizes: 1048576, 512KiB, 1MiB.',
    ...lines,
  ].join('\n');
}

/** Which README table a setting is in. */
type Section = 'shared' | 'bot' | 'web' | 'gateway' | 'runner';

const SECTION_TITLES: Record<Section, string> = {
  shared: 'Read by several services',
  bot: 'notify-bot',
  web: 'notify-web',
  gateway: 'notify-gateway',
  runner: 'notify-runner and notify-scripts (run as the analyst, on `$HOME`)',
};

function sectionOf(spec: SettingSpec): Section {
  const services = new Set(spec.programs.map((p) => (p === 'scripts' ? 'runner' : p)));
  if (services.size > 1) return 'shared';
  return [...services][0] as Section;
}

const cell = (text: string): string => text.replaceAll('|', '\\|');
const code = (text: string): string => (text.includes('`') ? cell(text) : `\`${cell(text)}\``);

/** The README's configuration tables (between its `settings` markers). */
export function readmeTables(): string {
  const out: string[] = [];
  for (const section of Object.keys(SECTION_TITLES) as Section[]) {
    const rows = allSettings().filter(([, s]) => sectionOf(s) === section);
    if (rows.length === 0) continue;
    const shared = section === 'shared';
    out.push(`### ${SECTION_TITLES[section]}`, '');
    out.push(shared ? '| variable | default | values | used by | meaning |' : '| variable | default | values | meaning |');
    out.push(shared ? '| --- | --- | --- | --- | --- |' : '| --- | --- | --- | --- |');
    for (const [name, spec] of rows) {
      const def = spec.default !== undefined && !spec.required ? code(spec.default) : `(${cell(shownDefault(spec))})`;
      const usedBy = shared ? ` ${spec.programs.join(', ')} |` : '';
      out.push(`| \`${name}\` | ${def} | ${acceptedValues(spec)} |${usedBy} ${cell(spec.meaning)}${spec.secret ? '; never logged' : ''} |`);
    }
    out.push('');
  }
  return out.join('\n');
}

/** The env template's tunables block (between its `tunables` markers). */
export function envTunables(): string {
  const out = ['# Tunables with their defaults (uncomment to change). See README.md, Configuration.'];
  for (const [name, spec] of allSettings()) {
    if (!('tunable' in spec) || !spec.tunable) continue;
    out.push(`# ${spec.meaning} [${spec.programs.map((p) => PROGRAMS[p]).join(', ')}]`, `# ${name}=${spec.default ?? ''}`);
  }
  return out.join('\n');
}

/** A file region the generator owns: the text between two marker lines. */
export interface GeneratedRegion {
  /** Path from the repository root. */
  file: string;
  begin: string;
  end: string;
  text: string;
}

/** Every generated region. */
export function generatedRegions(): GeneratedRegion[] {
  return [
    { file: 'README.md', begin: '<!-- settings: begin (generated by npm run gen from src/shared/settings.ts) -->', end: '<!-- settings: end -->', text: readmeTables() },
    { file: 'deploy/notify.env.example', begin: '# >>> tunables: begin', end: '# <<< tunables: end', text: envTunables() },
  ];
}

/** `content` with the region's text replaced; throws when a marker is missing. */
export function withRegion(content: string, region: GeneratedRegion): string {
  const a = content.indexOf(`${region.begin}\n`);
  const b = content.indexOf(`${region.end}\n`, a);
  if (a < 0 || b < 0) throw new Error(`${region.file}: the markers '${region.begin}' and '${region.end}' are missing`);
  return `${content.slice(0, a + region.begin.length + 1)}${region.text}\n${content.slice(b)}`;
}
