/**
 * The example scripts analysts copy from /data/docs/examples/notifications: each one
 * notifies on data the test creates, prints output the script contract accepts, and stays quiet
 * ({"notify": false}, exit 0, one line on stderr) when its library or its data is missing.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ScriptOutputSchema, describeZodError } from '../src/shared/contract.js';
import {
  canImport,
  debianPython,
  makeVenv,
  onlyJsonObject,
  pythonWithout,
  runScript,
  type PythonCommand,
  type ScriptRun,
} from './support/python.js';

const ROOT = process.env.NOTIFY_PROJECT_ROOT ?? fileURLToPath(new URL('../..', import.meta.url));
const EXAMPLES = join(ROOT, 'examples', 'notifications');
const ARTIFACTS = join(ROOT, 'test-artifacts', 'examples');
const PNG_MAGIC = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

/** The script's output, checked against the script contract's schema. */
function contractOutput(run: ScriptRun): Record<string, unknown> {
  assert.equal(run.status, 0, `the script exited ${run.status}; stderr:\n${run.stderr}`);
  const out = onlyJsonObject(run);
  const parsed = ScriptOutputSchema.safeParse(out);
  assert.ok(parsed.success, `output breaks the script contract: ${parsed.success ? '' : describeZodError(parsed.error)}\n${run.stdout}`);
  return out;
}

/** Asserts the quiet way out: exactly {"notify": false}, exit 0, one stderr line matching `why`. */
function assertQuiet(run: ScriptRun, why: RegExp): void {
  const out = contractOutput(run);
  assert.deepEqual(out, { notify: false });
  const lines = run.stderr.split('\n').filter((l) => l.trim() !== '');
  assert.equal(lines.length, 1, `expected one line on stderr, got:\n${run.stderr}`);
  assert.match(lines[0]!, why);
}

/** A date `daysAgo` days before today (UTC, as the scripts run with TZ=UTC). */
function isoDay(daysAgo: number): string {
  return new Date(Date.now() - daysAgo * 86_400_000).toISOString().slice(0, 10);
}

let home: string;
let debian: PythonCommand;

before(() => {
  home = mkdtempSync(join(tmpdir(), 'notify-examples-'));
  debian = debianPython();
  mkdirSync(ARTIFACTS, { recursive: true });
});

after(() => {
  rmSync(home, { recursive: true, force: true });
});

void describe('revenue_drop.py', () => {
  const script = join(EXAMPLES, 'revenue_drop.py');
  let db: string;

  before(() => {
    // Seven days at 60,000 and today at 45,000 (two rows, one with a time): a 25% drop.
    db = join(home, 'revenue.sqlite');
    const rows: [string, number][] = [];
    for (let d = 1; d <= 7; d++) rows.push([isoDay(d), 60_000]);
    rows.push([`${isoDay(0)} 09:30:00`, 30_000], [isoDay(0), 15_000]);
    const build = spawnSync(
      debian.exe,
      [
        '-c',
        'import json, sqlite3, sys\n' +
          'con = sqlite3.connect(sys.argv[1])\n' +
          'con.execute("CREATE TABLE revenue (day TEXT, amount REAL)")\n' +
          'con.executemany("INSERT INTO revenue VALUES (?, ?)", json.loads(sys.argv[2]))\n' +
          'con.commit()\n',
        db,
        JSON.stringify(rows),
      ],
      { encoding: 'utf8' },
    );
    assert.equal(build.status, 0, build.stderr);
  });

  void test('alerts when today is 25% under the 7-day average (SQLite database)', () => {
    const out = contractOutput(runScript(debian, script, { home, env: { REVENUE_DB: db } }));
    assert.equal(out.notify, true);
    assert.equal(out.title, 'Revenue dropped 25%');
    assert.match(String(out.message), /\$45,000/);
    assert.match(String(out.message), /\$60,000/);
    assert.equal(out.cooldown, '6h');
    assert.deepEqual(out.data, {
      day: isoDay(0),
      revenue: 45_000,
      average_7d: 60_000,
      drop_pct: 25,
      threshold_pct: 20,
      days_compared: 7,
    });
  });

  void test('takes the database as its first argument too', () => {
    const out = contractOutput(runScript(debian, script, { home, args: [db] }));
    assert.equal(out.notify, true);
  });

  void test('does not notify when the drop is under the threshold', () => {
    const out = contractOutput(runScript(debian, script, { home, env: { REVENUE_DB: db, REVENUE_DROP_PCT: '30' } }));
    assert.equal(out.notify, false);
    assert.equal((out.data as { drop_pct: number }).drop_pct, 25);
  });

  void test('stays quiet and says why when the database is missing', () => {
    assertQuiet(runScript(debian, script, { home, env: { REVENUE_DB: join(home, 'nope.sqlite') } }), /^revenue_drop: database .*nope\.sqlite does not exist/);
  });

  void test('stays quiet and says why when the table is missing', () => {
    const empty = join(home, 'empty.db');
    assert.equal(spawnSync(debian.exe, ['-c', 'import sqlite3, sys; sqlite3.connect(sys.argv[1]).execute("CREATE TABLE other (x)")', empty]).status, 0);
    assertQuiet(runScript(debian, script, { home, env: { REVENUE_DB: empty } }), /^revenue_drop: cannot read revenue from .*no such table: revenue/);
  });

  void test("stays quiet and says why when today's rows are not there yet", () => {
    const old = join(home, 'old.sqlite');
    copyFileSync(db, old);
    assert.equal(spawnSync(debian.exe, ['-c', `import sqlite3, sys; c = sqlite3.connect(sys.argv[1]); c.execute("DELETE FROM revenue WHERE date(day) = '${isoDay(0)}'"); c.commit()`, old]).status, 0);
    assertQuiet(runScript(debian, script, { home, env: { REVENUE_DB: old } }), new RegExp(`^revenue_drop: no revenue rows for ${isoDay(0)}`));
  });

  void test('stays quiet and says why when DuckDB is not installed (a .duckdb database)', (t) => {
    if (canImport(debian, 'duckdb')) {
      t.skip('duckdb is installed for Debian python3 here, so it cannot be missing');
      return;
    }
    const duck = join(home, 'revenue.duckdb');
    writeFileSync(duck, '');
    assertQuiet(runScript(debian, script, { home, env: { REVENUE_DB: duck } }), /^revenue_drop: the duckdb module is not installed/);
  });
});

void describe('metric_report.py', () => {
  const script = join(EXAMPLES, 'metric_report.py');
  let venv: PythonCommand;
  let csv: string;
  let charts: string;

  before(() => {
    venv = makeVenv(home);
    assert.ok(
      canImport(venv, 'matplotlib'),
      'matplotlib is not importable from a --system-site-packages venv of /usr/bin/python3: apt-get install python3-matplotlib',
    );
    csv = join(home, 'signups.csv');
    const lines = ['date,value'];
    for (let d = 20; d >= 1; d--) lines.push(`${isoDay(d)},${1000 + ((d * 37) % 90)}`);
    lines.push(`${isoDay(0)},700`);
    writeFileSync(csv, `${lines.join('\n')}\n`);
    charts = join(home, 'tmp');
    mkdirSync(charts);
  });

  void test('sends a photo: a PNG chart drawn with Debian matplotlib through ~/.venv', () => {
    const out = contractOutput(runScript(venv, script, { home, env: { METRIC_CSV: csv, TMPDIR: charts } }));
    assert.equal(out.notify, true);
    assert.match(String(out.title), /^Daily signups: 700 \(-\d+\.\d% vs 7-day average\)$/);
    assert.equal(out.cooldown, '1d');
    const image = String(out.image_path);
    assert.ok(image.startsWith(`${charts}/metric_report-`) && image.endsWith('.png'), `image_path ${image} is not a chart in TMPDIR`);
    const bytes = readFileSync(image);
    assert.deepEqual(bytes.subarray(0, 8), PNG_MAGIC, 'the chart is not a PNG');
    assert.ok(bytes.length > 10_000, `the chart is suspiciously small (${bytes.length} bytes)`);
    copyFileSync(image, join(ARTIFACTS, 'metric_report.png'));
  });

  void test('removes its charts of earlier days, not the recent ones', () => {
    const old = join(charts, 'metric_report-old.png');
    const recent = join(charts, 'metric_report-recent.png');
    writeFileSync(old, PNG_MAGIC);
    writeFileSync(recent, PNG_MAGIC);
    const twoDaysAgo = Date.now() / 1000 - 2 * 86_400;
    utimesSync(old, twoDaysAgo, twoDaysAgo);
    contractOutput(runScript(venv, script, { home, env: { METRIC_CSV: csv, TMPDIR: charts } }));
    assert.equal(existsSync(old), false, 'the two-day-old chart is still there');
    assert.equal(existsSync(recent), true, 'a recent chart was removed');
  });

  void test('stays quiet and says why when matplotlib is missing', () => {
    const bare = pythonWithout('matplotlib');
    assertQuiet(runScript(bare, script, { home, env: { METRIC_CSV: csv, TMPDIR: charts } }), /^metric_report: matplotlib is not installed for .*venv --system-site-packages/);
  });

  void test('stays quiet and says why when the data file is missing', () => {
    assertQuiet(runScript(venv, script, { home, env: { METRIC_CSV: join(home, 'none.csv'), TMPDIR: charts } }), /^metric_report: data file .*none\.csv does not exist/);
  });

  void test('stays quiet and says why when the data has the wrong columns', () => {
    const wrong = join(home, 'wrong.csv');
    writeFileSync(wrong, 'day,count\n2024-01-01,3\n');
    assertQuiet(runScript(venv, script, { home, env: { METRIC_CSV: wrong, TMPDIR: charts } }), /^metric_report: cannot read .*no column date, value/);
  });
});

void describe('data_freshness.py', () => {
  const script = join(EXAMPLES, 'data_freshness.py');
  let dir: string;

  /** Creates `rel` under the data folder, last modified `hours` ago. */
  function parquet(rel: string, hours: number): void {
    const path = join(dir, rel);
    mkdirSync(join(path, '..'), { recursive: true });
    writeFileSync(path, 'PAR1');
    const at = Date.now() / 1000 - hours * 3600;
    utimesSync(path, at, at);
  }

  before(() => {
    dir = join(home, 'parquet');
    parquet('orders.parquet', 1);
    parquet('daily_sales/part-0.parquet', 30);
    parquet('customers_eu.parquet', 75);
    parquet('notes.csv', 500); // not a parquet file: ignored
  });

  void test('alerts with the stale files, oldest first, their ages and names as code', () => {
    const out = contractOutput(runScript(debian, script, { home, env: { FRESHNESS_DIR: dir } }));
    assert.equal(out.notify, true);
    assert.equal(out.title, '2 of 3 data files are stale');
    const lines = String(out.message).split('\n');
    assert.equal(lines[0], `Not updated for more than 26 h in \`${dir}\`:`);
    assert.equal(lines[1], '`customers_eu.parquet`: 3d 3h old');
    assert.equal(lines[2], '`daily_sales/part-0.parquet`: 1d 6h old');
    assert.equal(lines.length, 3);
    assert.equal(out.cooldown, '6h');
    const data = out.data as Record<string, unknown>;
    assert.equal(data.checked, 3);
    assert.equal(data.stale, 2);
    assert.equal((data.oldest as { path: string }).path, 'customers_eu.parquet');
  });

  void test('does not notify when every file is younger than the threshold', () => {
    const out = contractOutput(runScript(debian, script, { home, env: { FRESHNESS_DIR: dir, FRESHNESS_MAX_AGE_HOURS: '100' } }));
    assert.equal(out.notify, false);
    assert.equal((out.data as { stale: number }).stale, 0);
  });

  void test('stays quiet and says why when the folder is missing', () => {
    assertQuiet(runScript(debian, script, { home, env: { FRESHNESS_DIR: join(home, 'gone') } }), /^data_freshness: folder .*gone does not exist/);
  });

  void test('stays quiet and says why when the folder has no parquet files', () => {
    const empty = join(home, 'empty');
    mkdirSync(empty);
    assertQuiet(runScript(debian, script, { home, env: { FRESHNESS_DIR: empty } }), /^data_freshness: no \*\.parquet files under /);
  });

  void test('needs no third-party library: runs on a Python without site-packages', () => {
    const bare: PythonCommand = { exe: debian.exe, args: ['-S'], label: 'python3 -S' };
    const out = contractOutput(runScript(bare, script, { home, env: { FRESHNESS_DIR: dir } }));
    assert.equal(out.notify, true);
  });
});

void test('every example says what to change in its docstring', () => {
  for (const name of ['revenue_drop.py', 'metric_report.py', 'data_freshness.py']) {
    const text = readFileSync(join(EXAMPLES, name), 'utf8');
    assert.match(text, /^#!\/usr\/bin\/env python3\n"""/, `${name} does not start with a shebang and a docstring`);
    assert.match(text, /What to change/, `${name}'s docstring does not say what to change`);
    assert.match(text, new RegExp(`notify-runner --dry-run --script ${name.replace('.', '\\.')}`), `${name} does not say how to try it`);
    assert.ok(statSync(join(EXAMPLES, name)).size < 20_000);
  }
});
