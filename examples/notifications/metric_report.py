#!/usr/bin/env python3
"""Daily report of a metric, with a chart: sends a photo of its last 14 days.

Reads one value per day from a CSV file, draws the last DAYS days with matplotlib
(today's point highlighted, the 7-day average as a dashed line), writes the chart to a
temporary PNG and returns it as "image_path"; the runner uploads it to the bot.

What to change (here, or with the environment variables in brackets):
- CSV_PATH [METRIC_CSV]: a CSV file with a header row and one row per day: a date
  (YYYY-MM-DD) in column DATE_FIELD and a number in column VALUE_FIELD. Export it from
  your query, or replace load_series() with the query itself.
- METRIC_NAME [METRIC_NAME]: what the chart and the title call the metric.
- DAYS: how many days the chart shows.
- COOLDOWN: "1d" sends the report once a day although cron runs the runner every few
  minutes.

Needs matplotlib. The server's Python has it (Debian's python3-matplotlib); a venv sees
it when made with:  /usr/bin/python3 -m venv --system-site-packages ~/.venv

Try it:  notify-runner --dry-run --script metric_report.py

It prints one JSON object (see /data/docs/notifications.md). When matplotlib or the data
is missing it prints {"notify": false} and one line on stderr saying why.
"""
import csv
import datetime
import glob
import json
import os
import sys
import tempfile
import time

CSV_PATH = os.environ.get("METRIC_CSV", os.path.expanduser("~/user/data/daily_signups.csv"))
DATE_FIELD = "date"
VALUE_FIELD = "value"
METRIC_NAME = os.environ.get("METRIC_NAME", "Daily signups")
DAYS = 14
COOLDOWN = "1d"
CHART_PREFIX = "metric_report-"


def quiet(reason):
    """Nothing to send, and why, for the runner's log."""
    print(f"metric_report: {reason}", file=sys.stderr)
    print(json.dumps({"notify": False}))
    return 0


def load_series(path):
    """[(date, value)] sorted by date, one per day (the last row of a day wins)."""
    by_day = {}
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        missing = {DATE_FIELD, VALUE_FIELD} - set(reader.fieldnames or [])
        if missing:
            raise KeyError(f"{path} has no column {', '.join(sorted(missing))}")
        for row in reader:
            raw_date, raw_value = (row.get(DATE_FIELD) or "").strip(), (row.get(VALUE_FIELD) or "").strip()
            if not raw_date or not raw_value:
                continue
            by_day[datetime.date.fromisoformat(raw_date[:10])] = float(raw_value)
    return sorted(by_day.items())


def remove_old_charts(max_age_seconds=86400):
    """Charts of earlier runs: the runner has long sent them."""
    for path in glob.glob(os.path.join(tempfile.gettempdir(), CHART_PREFIX + "*.png")):
        try:
            if time.time() - os.path.getmtime(path) > max_age_seconds and os.stat(path).st_uid == os.getuid():
                os.remove(path)
        except OSError:
            pass


def draw(series, average, path):
    import matplotlib

    matplotlib.use("Agg")  # no display on a server
    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt

    days = [d for d, _ in series]
    values = [v for _, v in series]
    fig, ax = plt.subplots(figsize=(8, 4), dpi=100)
    ax.plot(days, values, marker="o", color="#4c72b0", linewidth=2, label=METRIC_NAME)
    ax.axhline(average, color="#888888", linestyle="--", linewidth=1, label="7-day average")
    last_color = "#c44e52" if values[-1] < average else "#55a868"
    ax.scatter([days[-1]], [values[-1]], s=120, color=last_color, zorder=3)
    ax.annotate(f"{values[-1]:,.0f}", (days[-1], values[-1]), textcoords="offset points", xytext=(0, 10), ha="center")
    ax.set_title(f"{METRIC_NAME}, last {len(days)} days")
    ax.xaxis.set_major_formatter(mdates.DateFormatter("%b %d"))
    ax.grid(alpha=0.3)
    ax.legend(loc="best")
    fig.autofmt_xdate()
    fig.tight_layout()
    fig.savefig(path, format="png")
    plt.close(fig)


def main():
    try:
        import matplotlib  # noqa: F401  (checked here, used in draw())
    except ImportError:
        return quiet(
            f"matplotlib is not installed for {sys.executable}; make your venv with "
            "/usr/bin/python3 -m venv --system-site-packages ~/.venv"
        )
    if not os.path.isfile(CSV_PATH):
        return quiet(f"data file {CSV_PATH} does not exist (set METRIC_CSV or CSV_PATH)")
    try:
        series = load_series(CSV_PATH)[-DAYS:]
    except (KeyError, ValueError) as err:
        return quiet(f"cannot read {CSV_PATH}: {err}")
    if len(series) < 2:
        return quiet(f"{CSV_PATH} has {len(series)} day(s) of data; the chart needs at least 2")

    latest_day, latest = series[-1]
    before = [v for _, v in series[-8:-1]]
    average = sum(before) / len(before)
    change_pct = (latest - average) / average * 100 if average else 0.0

    remove_old_charts()
    fd, chart = tempfile.mkstemp(prefix=CHART_PREFIX, suffix=".png")
    os.close(fd)
    draw(series, average, chart)

    print(
        json.dumps(
            {
                "notify": True,
                "title": f"{METRIC_NAME}: {latest:,.0f} ({change_pct:+.1f}% vs 7-day average)",
                "message": (
                    f"{latest_day.isoformat()}: *{latest:,.0f}*\n"
                    f"7-day average: {average:,.0f}\n"
                    f"Highest of the last {len(series)} days: {max(v for _, v in series):,.0f}"
                ),
                "image_path": chart,
                "cooldown": COOLDOWN,
                "data": {
                    "day": latest_day.isoformat(),
                    "value": latest,
                    "average_7d": round(average, 2),
                    "change_pct": round(change_pct, 1),
                },
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
