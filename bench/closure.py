"""Closing a day of 20,000 sales and archiving a month of 600,000 (issue 11, acceptance 6).

Run: ./dev bench closure   (options --per-day, --days)

A journal of `--days` business days (default 30) of `--per-day` sales each
(default 20,000: a large supermarket's day), recorded by one till node, its
events hashed as the journal hashes them (not signed: neither closing nor
archiving checks signatures, `edge verify` does), written straight to
SQLite with the node's schema. Then, each in a child process of its own (its
peak RSS read from `wait4`, its time measured inside it, imports aside):
- close the days but the last (the store's first closure reads every sale
  once; the others read only the sales since the previous one), then close
  the last day: `edge close --day`'s own code (closing.py: the counting on a
  read snapshot, the one event written);
- read the same day's sales with raw sqlite3 (rows and JSON bodies: what any
  closure must at least read) — the baseline of the ratio;
- write the month's archive (`edge archive --period`: events.jsonl,
  sales.csv, totals, closures, keys, manifest, signed), and read the month's
  events with raw sqlite3 (every row and body), the baseline.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from datetime import UTC, date, timedelta
from pathlib import Path
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parent.parent
CALENDAR_ARGS = (4, "01-01")
FIRST_DAY = date(2025, 11, 1)  # a November over: 30 days
ORIGIN = "bench-till-node"


def _sale(number: int) -> dict[str, Any]:
    lines = [{"id": f"l{n}", "product_id": f"p{n}", "barcode": None, "name": f"Produit {n}",
              "unit_price": 120 + n, "vat_rate": 550 if n else 2000, "quantity": 2,
              "total": 2 * (120 + n)} for n in range(3)]
    base = {550: 0, 2000: 0}
    for line in lines:
        base[line["vat_rate"]] += line["total"]
    vat = [{"rate": rate, "base": total - total * rate // (10000 + rate),
            "vat": total * rate // (10000 + rate), "total": total}
           for rate, total in base.items()]
    total = sum(line["total"] for line in lines)
    cash = number % 3 == 0
    return {"id": f"s{number}@T{number % 8:02d}", "till": f"T{number % 8:02d}",
            "receipt_no": number, "receipt_number": f"T{number % 8:02d}-{number:06d}",
            "cashier": "c1", "lines": lines, "totals": {"total": total, "items": 6, "vat": vat},
            "tenders": [{"method": "cash", "amount": 1000}] if cash else
            [{"method": "card", "amount": total, "reference": "slip"}],
            "change": 1000 - total if cash else 0}


def build(folder: Path, per_day: int, days: int) -> Path:
    """The journal: `days` days of `per_day` sales, straight into SQLite."""
    from edge.journal.chain import event_hash
    from edge.journal.store import Journal
    from edge.trust.folder import TrustFolder

    database = folder / "edge.sqlite3"
    TrustFolder(folder).init_store("bench-store", "bench-closer", ["localhost"], ["127.0.0.1"])

    async def schema() -> None:
        from edge.journal.store import folder_trust
        journal = Journal(database, origin="bench-closer", trust=folder_trust(folder))
        await journal.open()
        await journal.close()

    asyncio.run(schema())
    db = sqlite3.connect(database)
    db.execute("BEGIN")
    prev, seq = "0" * 64, 0
    for day in range(days):
        first = FIRST_DAY + timedelta(days=day)
        rows = []
        for n in range(per_day):
            seq += 1
            seconds = 5 * 3600 + n * (16 * 3600) // per_day  # 09:00-01:00 local (UTC here)
            moment = f"{first.isoformat()}T00:00:00.000Z"
            hour, rest = divmod(seconds, 3600)
            when = first + timedelta(days=hour // 24)
            moment = (f"{when.isoformat()}T{hour % 24:02d}:{rest // 60:02d}:{rest % 60:02d}"
                      f".{n % 1000:03d}Z")
            body = _sale(seq)
            digest = event_hash(ORIGIN, seq, f"e{seq}", moment, "sale_completed", body, prev)
            rows.append((ORIGIN, seq, f"e{seq}", moment, "sale_completed",
                         orjson.dumps(body).decode(), prev, digest, "00" * 64))
            prev = digest
        db.executemany("INSERT INTO events (origin, seq, id, time, type, body, prev_hash, "
                       "hash, sig) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
    db.execute("COMMIT")
    db.close()
    return database


# The children: each prints {"seconds": ..., ...} on its last line.

def child_close(folder: Path, first: str, last: str) -> dict[str, Any]:
    from edge.fiscal.closing import Request, close_period
    from edge.fiscal.periods import Calendar
    from edge.journal.store import local_journal

    calendar = Calendar(*CALENDAR_ARGS, UTC)
    times: list[float] = []

    async def run() -> int:
        async with local_journal(folder, folder / "edge.sqlite3", "bench") as journal:
            day, count = first, 0
            while day <= last:
                began = time.perf_counter()
                closure = await close_period(journal, calendar, Request("day", day))
                times.append(time.perf_counter() - began)
                count = closure.body["totals"]["net"]["count"]
                day = calendar.following("day", day)
            return count

    count = asyncio.run(run())
    return {"seconds": times[-1], "first": times[0], "each": sorted(times)[len(times) // 2],
            "sales": count}


def child_read(folder: Path, start: str, end: str) -> dict[str, Any]:
    db = sqlite3.connect(f"file:{folder / 'edge.sqlite3'}?mode=ro", uri=True)
    began = time.perf_counter()
    count = 0
    for row in db.execute("SELECT origin, seq, id, time, type, body, prev_hash, hash, sig "
                          "FROM events WHERE time >= ? AND time < ?", (start, end)):
        orjson.loads(row[5])
        count += 1
    return {"seconds": time.perf_counter() - began, "sales": count}


def child_archive(folder: Path, month: str) -> dict[str, Any]:
    from edge.fiscal.archive import write_archive
    from edge.fiscal.periods import Calendar
    from edge.journal.store import folder_trust

    period = Calendar(*CALENDAR_ARGS, UTC).period("month", month)
    out = folder / f"archive-{month}.zip"
    out.unlink(missing_ok=True)
    began = time.perf_counter()
    written = write_archive(folder / "edge.sqlite3", period, out, folder_trust(folder))
    return {"seconds": time.perf_counter() - began, "sales": written.sales,
            "bytes": out.stat().st_size}


def child_build(folder: Path, per_day: str, days: str) -> dict[str, Any]:
    began = time.perf_counter()
    build(folder, int(per_day), int(days))
    return {"seconds": time.perf_counter() - began}


CHILDREN = {"build": child_build, "close": child_close, "read": child_read,
            "archive": child_archive}


def in_child(name: str, *args: str) -> dict[str, Any]:
    """Run a child; its figures, and its peak RSS (MB) from wait4."""
    proc = subprocess.Popen([sys.executable, "-m", "bench.closure", "--child", name, *args],
                            cwd=ROOT, stdout=subprocess.PIPE)
    assert proc.stdout is not None
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise RuntimeError(f"child {name} failed")
    return {**json.loads(out.splitlines()[-1]), "rss_mb": usage.ru_maxrss / 1024}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.closure")
    parser.add_argument("--per-day", type=int, default=20_000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        name, *rest = args.child
        print(json.dumps(CHILDREN[name](Path(rest[0]), *rest[1:])))
        return
    from edge.fiscal.periods import Calendar

    calendar = Calendar(*CALENDAR_ARGS, UTC)
    last = (FIRST_DAY + timedelta(days=args.days - 1)).isoformat()
    month = FIRST_DAY.isoformat()[:7]
    with tempfile.TemporaryDirectory(prefix="bench-closure-") as name:
        folder = Path(name)
        # Built in a child too: a child's peak RSS counts its parent's at the fork.
        built = in_child("build", str(folder), str(args.per_day), str(args.days))
        print(f"{args.days} days of {args.per_day:,} sales written in "
              f"{built['seconds']:.0f} s "
              f"({(folder / 'edge.sqlite3').stat().st_size / 2**20:.0f} MB)", flush=True)
        before = in_child("close", str(folder), FIRST_DAY.isoformat(),
                          calendar.previous("day", last))
        day = calendar.period("day", last)
        closing = in_child("close", str(folder), last, last)
        reading = in_child("read", str(folder), day.start, day.end)
        period = calendar.period("month", month)
        archiving = in_child("archive", str(folder), month)
        month_read = in_child("read", str(folder), period.start, period.end)
    print(f"Closures before: the store's first {before['first']:.2f} s, then "
          f"{before['each']:.2f} s each (median).")
    for what, done, base in (("close a day", closing, reading),
                             ("archive the month", archiving, month_read)):
        print(f"{what}: {done['sales']:,} sales, {done['seconds']:.2f} s "
              f"({done['seconds'] / base['seconds']:.1f}x raw sqlite3's "
              f"{base['seconds']:.2f} s), peak RSS {done['rss_mb']:.0f} MB "
              f"({done['rss_mb'] / base['rss_mb']:.1f}x raw's {base['rss_mb']:.0f} MB)"
              + (f", {done['bytes'] / 2**20:.0f} MB zip" if "bytes" in done else ""))


if __name__ == "__main__":
    main(sys.argv[1:])
