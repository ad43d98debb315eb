"""Head office's streamed catalogue import against a raw sqlite3 import of the same CSV.

`./dev bench headoffice_import [--products 1000000] [--db sqlite|postgresql://…]`

Each import runs as its own process (`edge headoffice import-catalogue`, as
head office's staff run it), so its peak RSS is its own. Three imports of
one catalogue: the first (every product new), the same CSV again (nothing
changes), and one with 2 % of prices changed (a price update). Goals
(issue 12): peak RSS ≤ 200 MB, time ≤ 3x the raw import.
"""

from __future__ import annotations

import argparse
import csv
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.catalogue_data import products, write_csv
from bench.nodes import verdict

ROOT = Path(__file__).resolve().parent.parent
RSS_GOAL_MB = 200
RATIO_GOAL = 3.0

RAW = """
import csv, sqlite3, sys
db = sqlite3.connect(sys.argv[2], isolation_level=None)
db.execute("PRAGMA journal_mode = WAL")
db.execute("CREATE TABLE products (id TEXT PRIMARY KEY, barcode TEXT UNIQUE, name TEXT, "
           "price INTEGER, vat_rate INTEGER, category TEXT)")
with open(sys.argv[1], encoding="utf-8", newline="") as source:
    db.execute("BEGIN")
    db.executemany("INSERT INTO products VALUES (?, ?, ?, ?, ?, ?)",
                   ((r["id"], r["barcode"], r["name"], int(r["price"]), int(r["vat_rate"]),
                     r["category"]) for r in csv.DictReader(source)))
    db.execute("COMMIT")
"""


def timed(command: list[str]) -> tuple[float, float, str]:
    """(seconds, peak RSS in MB, output) of one child process: its own rusage (wait4)."""
    began = time.perf_counter()
    with tempfile.TemporaryFile() as out:
        child = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT)
        _, status, usage = os.wait4(child.pid, 0)
        child.returncode = os.waitstatus_to_exitcode(status)
        seconds = time.perf_counter() - began
        out.seek(0)
        said = out.read().decode()
    if child.returncode != 0:
        raise RuntimeError(f"{command[2:4]} failed: {said}")
    return seconds, usage.ru_maxrss / 1024, said.strip()


def write_repriced(source: Path, target: Path, count: int) -> None:
    """The same catalogue, every 50th product's price changed (2 %)."""
    with target.open("w", encoding="utf-8", newline="") as out:
        writer = csv.DictWriter(out, fieldnames=["id", "barcode", "name", "price", "vat_rate",
                                                 "category"], lineterminator="\n")
        writer.writeheader()
        for number, product in enumerate(products(count), start=1):
            if number % 50 == 0:
                product["price"] += 1
            writer.writerow(product)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--products", type=int, default=100_000)
    parser.add_argument("--db", default="", help="head office's database (default: a "
                        "SQLite file in a scratch folder)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-ho-import-") as scratch:
        folder = Path(scratch)
        catalogue, repriced = folder / "catalogue.csv", folder / "repriced.csv"
        write_csv(catalogue, args.products)
        write_repriced(catalogue, repriced, args.products)
        db = args.db or f"sqlite://{folder / 'headoffice.sqlite3'}"
        print(f"{args.products:,} products, {catalogue.stat().st_size / 1e6:.0f} MB of CSV; "
              f"head office on {db.split(':', 1)[0]}")
        raw_seconds, raw_rss, _ = timed([sys.executable, "-c", RAW, str(catalogue),
                                         str(folder / "raw.sqlite3")])
        print(f"  raw sqlite3 import      {raw_seconds:7.1f} s   peak RSS {raw_rss:6.0f} MB")
        for label, path in (("first import (all new)", catalogue),
                            ("same CSV again", catalogue),
                            ("2 % of prices changed", repriced)):
            seconds, rss, said = timed([sys.executable, "-m", "edge", "headoffice",
                                        "import-catalogue", "--db", db, "--csv", str(path)])
            ratio = seconds / raw_seconds
            print(f"  {label:<24}{seconds:7.1f} s   peak RSS {rss:6.0f} MB   "
                  f"{ratio:5.1f}x raw   ({said.split(': ', 1)[-1]}) time goal "
                  f"<= {RATIO_GOAL:g}x raw: {verdict(ratio, RATIO_GOAL)}; RSS goal <= "
                  f"{RSS_GOAL_MB} MB: {verdict(rss / RSS_GOAL_MB)}")


if __name__ == "__main__":
    main(sys.argv[1:])
