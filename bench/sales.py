"""Durable sales per second through the till websocket, against raw SQLite commits.

Run: ./dev bench   (or .venv/bin/python -m bench.sales)

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
import contextlib
import os
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import aiohttp

from edge.tills import create_pairing_code

ROOT = Path(__file__).resolve().parent.parent
BARCODES = ["2000001000014", "2000002000013", "2000003000012", "2000004000011"]


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


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Call:
    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws, self.next_id = ws, 0

    async def __call__(self, type_: str, **args: object) -> object:
        self.next_id += 1
        await self.ws.send_json({"id": self.next_id, "type": type_, **args})
        reply = await self.ws.receive_json()
        if not reply["success"]:
            raise RuntimeError(reply["error"])
        return reply["result"]


async def till_loop(url: str, token: str, stop_at: float, latencies: list[float]) -> int:
    sales = 0
    async with aiohttp.ClientSession() as session, session.ws_connect(f"{url}/api/ws") as ws:
        call = Call(ws)
        await call("auth", token=token)
        await call("login", cashier_id="alice", pin="1234")
        while time.perf_counter() < stop_at:
            started = time.perf_counter()
            basket = str(uuid.uuid4())
            for barcode in BARCODES[:2]:
                await call("basket/add", basket_id=basket, line_id=str(uuid.uuid4()),
                           barcode=barcode)
            await call("sale/complete", basket_id=basket,
                       tenders=[{"method": "cash", "amount": 1000}])
            latencies.append(time.perf_counter() - started)
            sales += 1
    return sales


async def edge_sales_per_second(folder: Path, tills: int, seconds: float) -> tuple[float, float]:
    port = free_port()
    data = folder / f"edge-{tills}"
    url = f"http://127.0.0.1:{port}"
    log = (folder / f"edge-{tills}.log").open("wb")
    server = subprocess.Popen(  # noqa: ASYNC220 (starting it does not wait for it)
        [sys.executable, "-m", "edge", "serve", "--host", "127.0.0.1", "--port", str(port),
         "--data", str(data), "--no-advertise", "--log-level", "WARNING"],
        stdout=log, stderr=subprocess.STDOUT, cwd=ROOT,
    )
    try:
        async with aiohttp.ClientSession() as session:
            for _ in range(400):
                with contextlib.suppress(aiohttp.ClientError):
                    async with session.get(f"{url}/healthz") as response:
                        if response.status == 200:
                            break
                await asyncio.sleep(0.05)
            tokens = []
            for _ in range(tills):
                code = create_pairing_code(data / "edge.sqlite3")
                async with session.post(f"{url}/api/pair", json={"code": code}) as response:
                    tokens.append((await response.json())["token"])
        latencies: list[float] = []
        start = time.perf_counter()
        counts = await asyncio.gather(
            *(till_loop(url, token, start + seconds, latencies) for token in tokens)
        )
        elapsed = time.perf_counter() - start
        latencies.sort()
        return sum(counts) / elapsed, latencies[len(latencies) // 2] * 1000
    finally:
        server.terminate()
        server.wait(10)
        log.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--tills", default="1,10,50")
    args = parser.parse_args()
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
