"""Durable sales per second through the till websocket, against raw SQLite commits.

Both figures are measured in the same run on the same disk: the baseline is
one-row commits per second into a WAL SQLite file with synchronous=FULL (what
"durable" costs here); edge's figure is sales a second completed by
simulated tills (each sale: scan two products, pay cash), every one
acknowledged after its commit. A sale is three journal writes (two scans and
the sale), so 1/3 of the baseline is what one till alone could reach with no
overhead at all; group commit is what lets many tills go beyond it.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sqlite3
import tempfile
import time
from pathlib import Path

from bench.nodes import BARCODES, ROOT, BenchNode, free_port, percentile
from edge.till_client import TillClient


def raw_sqlite_commits_per_second(folder: Path, seconds: float) -> float:
    path = folder / "raw.sqlite3"
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = FULL")
    conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, body TEXT)")
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        conn.execute("BEGIN")
        conn.execute("INSERT INTO t (body) VALUES (?)", ("x" * 200,))
        conn.execute("COMMIT")
        count += 1
    elapsed = time.perf_counter() - start
    conn.close()
    return count / elapsed


async def till_loop(url: str, token: str, stop_at: float, latencies: list[float]) -> int:
    sales = 0
    async with TillClient([url], token, "alice", "1234", timeout=30) as till:
        while time.perf_counter() < stop_at:
            started = time.perf_counter()
            await till.sell(BARCODES[:2], 1000)
            latencies.append(time.perf_counter() - started)
            sales += 1
    return sales


async def edge_sales_per_second(folder: Path, tills: int, seconds: float) -> tuple[float, float]:
    node = BenchNode(folder / f"edge-{tills}", free_port())
    await node.start()
    try:
        tokens = [await node.pair() for _ in range(tills)]
        latencies: list[float] = []
        start = time.perf_counter()
        counts = await asyncio.gather(
            *(till_loop(node.url, token, start + seconds, latencies) for token in tokens)
        )
        elapsed = time.perf_counter() - start
        return sum(counts) / elapsed, percentile(latencies, 0.5) * 1000
    finally:
        node.stop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--tills", default="1,10,50")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(dir=ROOT, prefix=".bench-") as tmp:
        folder = Path(tmp)
        raw = raw_sqlite_commits_per_second(folder, args.seconds)
        print(f"machine: {os.cpu_count()} cores; disk of {ROOT}")
        print(f"baseline  raw SQLite WAL synchronous=FULL: {raw:8.0f} commits/s")
        for tills in (int(n) for n in args.tills.split(",")):
            rate, p50 = asyncio.run(edge_sales_per_second(folder, tills, args.seconds))
            print(f"edge      {tills:3d} till(s): {rate:8.0f} sales/s = {rate / raw:.3f} x raw "
                  f"commits/s ({3 * rate / raw:.2f} x counting 3 writes a sale); "
                  f"p50 sale {p50:.1f} ms")


if __name__ == "__main__":
    main()
