#!/usr/bin/env python3
"""Alert when today's revenue is well below the average of the 7 days before.

Sums the revenue of one day and of each of the 7 days before it, from a DuckDB database
(or a SQLite one), and sends a text alert when that day is more than THRESHOLD_PCT
percent below the average of those 7 days.

What to change (here, or with the environment variables in brackets):
- DB_PATH [REVENUE_DB]: the database file. A .duckdb file is read with DuckDB (install it
  into your ~/.venv: ~/.venv/bin/pip install duckdb); a .sqlite, .sqlite3 or .db file with
  Python's own sqlite3. You can also pass the path as the first argument when trying it.
- TABLE, DATE_COLUMN, AMOUNT_COLUMN: where the revenue is: rows with a date (or a
  timestamp) and an amount; one row per sale or one per day, both work.
- THRESHOLD_PCT [REVENUE_DROP_PCT]: how big a drop is worth an alert.
- DAY_OFFSET [REVENUE_DAY_OFFSET]: 0 compares today (so far); 1 compares yesterday, the
  better choice when today's rows keep arriving during the day.
- COOLDOWN: at most one alert per this time; the runner holds the repeats.

Try it:  notify-runner --dry-run --script revenue_drop.py

It prints one JSON object (see /data/docs/notifications.md): an alert with "notify":
true when revenue dropped, "notify": false when it did not. When DuckDB is not installed
or the database, the table or the day's rows are missing, it prints {"notify": false} and
one line on stderr saying why (the runner logs it): an unfinished setup stays quiet.
"""
import datetime
import json
import os
import re
import sys

DB_PATH = os.environ.get("REVENUE_DB", os.path.expanduser("~/user/data/revenue.duckdb"))
TABLE = "revenue"
DATE_COLUMN = "day"
AMOUNT_COLUMN = "amount"
THRESHOLD_PCT = float(os.environ.get("REVENUE_DROP_PCT", "20"))
DAY_OFFSET = int(os.environ.get("REVENUE_DAY_OFFSET", "0"))
CURRENCY = "$"
COOLDOWN = "6h"
MIN_HISTORY_DAYS = 3


def quiet(reason):
    """Nothing to send, and why, for the runner's log."""
    print(f"revenue_drop: {reason}", file=sys.stderr)
    print(json.dumps({"notify": False}))
    return 0


def daily_totals(db_path, first, last):
    """{date: revenue} for the days from first to last that have rows."""
    for name in (TABLE, DATE_COLUMN, AMOUNT_COLUMN):
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
            raise ValueError(f"{name!r} is not a plain table or column name")
    if db_path.endswith((".sqlite", ".sqlite3", ".db")):
        import sqlite3

        # Read-only: the script must never lock or change the analysts' database.
        con = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
        sql = (
            f"SELECT date({DATE_COLUMN}) AS d, SUM({AMOUNT_COLUMN}) FROM {TABLE} "
            f"WHERE date({DATE_COLUMN}) BETWEEN ? AND ? GROUP BY d"
        )
        params = (first.isoformat(), last.isoformat())
    else:
        import duckdb  # ImportError handled by the caller

        con = duckdb.connect(db_path, read_only=True)
        sql = (
            f"SELECT CAST({DATE_COLUMN} AS DATE) AS d, SUM({AMOUNT_COLUMN}) FROM {TABLE} "
            f"WHERE CAST({DATE_COLUMN} AS DATE) BETWEEN ? AND ? GROUP BY d"
        )
        params = [first, last]
    try:
        rows = con.execute(sql, params).fetchall()
    finally:
        con.close()
    return {str(d)[:10]: float(total or 0) for d, total in rows}


def money(value):
    return f"{CURRENCY}{value:,.0f}"


def main():
    db_path = sys.argv[1] if len(sys.argv) > 1 else DB_PATH
    if not os.path.isfile(db_path):
        return quiet(f"database {db_path} does not exist (set REVENUE_DB or DB_PATH)")

    day = datetime.date.today() - datetime.timedelta(days=DAY_OFFSET)
    first = day - datetime.timedelta(days=7)
    try:
        totals = daily_totals(db_path, first, day)
    except ImportError:
        return quiet(
            f"the duckdb module is not installed for {sys.executable}; "
            "install it (~/.venv/bin/pip install duckdb) or point REVENUE_DB at a SQLite file"
        )
    except Exception as err:  # a missing table or column: the data is not there (yet)
        return quiet(f"cannot read {TABLE} from {db_path}: {err}")

    today = totals.get(day.isoformat())
    if today is None:
        return quiet(f"no {TABLE} rows for {day.isoformat()} in {db_path} yet")
    history = [v for d, v in totals.items() if d != day.isoformat()]
    if len(history) < MIN_HISTORY_DAYS:
        return quiet(
            f"only {len(history)} of the 7 days before {day.isoformat()} have rows; "
            f"{MIN_HISTORY_DAYS} are needed to compare"
        )
    average = sum(history) / len(history)
    drop_pct = (average - today) / average * 100 if average > 0 else 0.0
    data = {
        "day": day.isoformat(),
        "revenue": round(today, 2),
        "average_7d": round(average, 2),
        "drop_pct": round(drop_pct, 1),
        "threshold_pct": THRESHOLD_PCT,
        "days_compared": len(history),
    }
    if drop_pct <= THRESHOLD_PCT:
        print(json.dumps({"notify": False, "data": data}))
        return 0

    label = "Today" if DAY_OFFSET == 0 else day.isoformat()
    print(
        json.dumps(
            {
                "notify": True,
                "title": f"Revenue dropped {drop_pct:.0f}%",
                "message": (
                    f"{label}: *{money(today)}*\n"
                    f"7-day average: {money(average)}\n"
                    f"Drop: {drop_pct:.1f}% (alert above {THRESHOLD_PCT:g}%)"
                ),
                "cooldown": COOLDOWN,
                "data": data,
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
