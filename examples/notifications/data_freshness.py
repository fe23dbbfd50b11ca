#!/usr/bin/env python3
"""Alert when the local parquet data is stale.

Looks at every *.parquet file under DATA_DIR (subfolders too) and sends an alert listing
the files that have not been modified for more than MAX_AGE_HOURS. It works on the
files' modification times, so it needs no parquet library.

What to change (here, or with the environment variables in brackets):
- DATA_DIR [FRESHNESS_DIR]: the folder your data lands in.
- MAX_AGE_HOURS [FRESHNESS_MAX_AGE_HOURS]: older than this is stale. A daily load wants
  a little over 24 h, so that a load that is merely late does not alert.
- PATTERN: which files count.
- COOLDOWN: at most one alert per this time while the data stays stale.

Try it:  notify-runner --dry-run --script data_freshness.py

It prints one JSON object (see /data/docs/notifications.md). When the folder is missing
or holds no matching file it prints {"notify": false} and one line on stderr saying why.
"""
import json
import os
import sys
import time
from pathlib import Path

DATA_DIR = os.environ.get("FRESHNESS_DIR", "/data/src_data/parquet")
MAX_AGE_HOURS = float(os.environ.get("FRESHNESS_MAX_AGE_HOURS", "26"))
PATTERN = "*.parquet"
COOLDOWN = "6h"
LIST_AT_MOST = 15


def quiet(reason):
    """Nothing to send, and why, for the runner's log."""
    print(f"data_freshness: {reason}", file=sys.stderr)
    print(json.dumps({"notify": False}))
    return 0


def age_text(hours):
    days, rest = divmod(int(hours), 24)
    return f"{days}d {rest}h" if days else f"{rest}h {int(hours * 60) % 60}m"


def code(text):
    """Text as Markdown `code`, so that underscores in names are not read as italics."""
    return "`" + text.replace("`", "'") + "`"


def main():
    root = Path(DATA_DIR)
    if not root.is_dir():
        return quiet(f"folder {DATA_DIR} does not exist (set FRESHNESS_DIR or DATA_DIR)")
    now = time.time()
    ages = []
    for path in root.rglob(PATTERN):
        try:
            if path.is_file():
                ages.append((str(path.relative_to(root)), (now - path.stat().st_mtime) / 3600))
        except OSError:
            continue  # removed while we looked
    if not ages:
        return quiet(f"no {PATTERN} files under {DATA_DIR}")

    stale = sorted((a for a in ages if a[1] > MAX_AGE_HOURS), key=lambda a: -a[1])
    data = {
        "dir": DATA_DIR,
        "checked": len(ages),
        "stale": len(stale),
        "threshold_hours": MAX_AGE_HOURS,
        "newest_age_hours": round(min(a[1] for a in ages), 2),
    }
    if not stale:
        print(json.dumps({"notify": False, "data": data}))
        return 0

    lines = [f"{code(name)}: {age_text(hours)} old" for name, hours in stale[:LIST_AT_MOST]]
    if len(stale) > LIST_AT_MOST:
        lines.append(f"... and {len(stale) - LIST_AT_MOST} more")
    data["oldest"] = {"path": stale[0][0], "age_hours": round(stale[0][1], 2)}
    print(
        json.dumps(
            {
                "notify": True,
                "title": f"{len(stale)} of {len(ages)} data files are stale",
                "message": f"Not updated for more than {MAX_AGE_HOURS:g} h in {code(DATA_DIR)}:\n" + "\n".join(lines),
                "cooldown": COOLDOWN,
                "data": data,
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
