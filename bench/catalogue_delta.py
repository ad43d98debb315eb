"""A till's catalogue copy and its changes (`catalogue/changes`) against `catalogue/export`.

A node in this process (the demo store plus `--products` generated products,
bench/catalogue_data.py) serves a till over a real websocket on loopback:

- bytes for a full copy: `catalogue/changes` (columnar rows, in pages as the browser
  till asks them: 500 then 2,000 each; against the 30 MB goal for a first copy)
  against `catalogue/export` (JSON objects, pages of 2,000, its most), raw
  and deflated as permessage-deflate would (one raw-deflate stream per
  socket, a sync flush per message); and whether the till's socket really
  negotiates permessage-deflate with the node;
- time to serve a full copy, and a 20,000-product change (`--changed`),
  every page, as ratios to reading the same rows with raw sqlite3;
- the first page of that change alone (its work holds the node's reader),
  and again for a second till with the same version (worked out once);
- sixty tills (`--tills`) reconnecting at once with the version they hold,
  after 200 prices changed, against the same tills each pulling
  `catalogue/export` as they all did at every auth before versions: bytes,
  time, and the slowest scan of one more till meanwhile.

Usage: `python -m bench.catalogue_delta [--products 100000] [--changed 20000] [--tills 60]`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import shutil
import sqlite3
import sys
import tempfile
import time
import zlib
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp.test_utils import TestServer

from bench.catalogue_data import products
from bench.nodes import ROOT, free_port, verdict
from edge.api.server import NODE, make_app
from edge.config import Config
from edge.selling.catalogue import import_products
from edge.selling.catalogue_versions import COLUMNS
from edge.selling.tills import create_pairing_code


class Socket:
    """A till's websocket: every answer's text kept, to count and compress."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.ids = 0
        self.texts: list[str] = []

    async def call(self, type_: str, **args: Any) -> Any:
        self.ids += 1
        await self.ws.send_json({"id": self.ids, "type": type_, **args})
        while True:
            message = await self.ws.receive(timeout=120)
            data = json.loads(message.data)
            if data.get("type") == "result" and data["id"] == self.ids:
                break
        self.texts.append(message.data)
        assert data["success"], data
        return data["result"]

    async def answer_pings(self) -> None:
        """Read until cancelled: aiohttp answers the node's pings as it reads (pushes are
        dropped, as `call` drops them)."""
        while True:
            await self.ws.receive()


def wire_bytes(texts: list[str]) -> tuple[int, int]:
    """(raw, deflated as permessage-deflate with context takeover) bytes of these messages."""
    stream = zlib.compressobj(zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED, -15)
    deflated = sum(len(stream.compress(text.encode()) + stream.flush(zlib.Z_SYNC_FLUSH)) - 4
                   for text in texts)  # the flush's 00 00 ff ff tail is not sent
    return sum(len(text.encode()) for text in texts), deflated


# As the browser till asks them (web/catalogue.js FIRST_PAGE_ROWS, PAGE_ROWS).
FIRST_PAGE_ROWS, PAGE_ROWS = 500, 2000
FIRST_COPY_GOAL_MB = 30  # the goal for a first copy on the wire


async def pull_changes(till: Socket, since: dict[str, int] | None) -> tuple[Any, int]:
    page = await till.call("catalogue/changes", since=since, limit=FIRST_PAGE_ROWS)
    version, rows = page["version"], len(page["products"]) + len(page["delisted"])
    while page["next"] is not None:
        page = await till.call("catalogue/changes", since=since, upto=version,
                               after=page["next"], limit=PAGE_ROWS)
        rows += len(page["products"]) + len(page["delisted"])
    return version, rows


async def pull_export(till: Socket) -> int:
    page = await till.call("catalogue/export", limit=2000)
    rows = len(page["products"])
    while page["next"] is not None:
        page = await till.call("catalogue/export", after=page["next"], limit=2000)
        rows += len(page["products"])
    return rows


def raw_read(database: Path, ids: list[str] | None) -> float:
    """Seconds for plain sqlite3 to read the same rows (all on sale, or these ids)."""
    db = sqlite3.connect(f"file:{database}?mode=ro", uri=True)
    try:
        started = time.perf_counter()
        columns = ", ".join(COLUMNS)
        if ids is None:
            db.execute(f"SELECT {columns} FROM products WHERE active ORDER BY id").fetchall()
        else:
            db.execute(f"SELECT {columns} FROM products WHERE id IN "
                       "(SELECT value FROM json_each(?))", (json.dumps(ids),)).fetchall()
        return time.perf_counter() - started
    finally:
        db.close()


def best(times: list[float]) -> float:
    return min(times)


async def run(folder: Path, count: int, changed: int, tills: int) -> None:
    config = Config(data_dir=folder / "data", advertise=False)
    app = make_app(config)
    server = TestServer(app, host="127.0.0.1", port=free_port())
    await server.start_server()
    try:
        journal = app[NODE].journal
        made = time.perf_counter()
        generated = list(products(count))
        for start in range(0, count, 5000):
            await import_products(journal, generated[start:start + 5000])
        print(f"{count} products written in {time.perf_counter() - made:.1f} s")
        database = config.data_dir / "edge.sqlite3"
        url = f"http://127.0.0.1:{server.port}"
        async with aiohttp.ClientSession() as session:
            code = create_pairing_code(database)
            async with session.post(f"{url}/api/pair", json={"code": code, "name": "B"}) as r:
                token = (await r.json())["token"]
            async with session.ws_connect(f"{url}/api/ws", compress=15) as ws:
                offered = ws.compress
                print(f"permessage-deflate when the till offers it (as chromium does): "
                      f"{'negotiated' if offered else 'NOT negotiated'} (window {offered})")
            async with session.ws_connect(f"{url}/api/ws") as ws:
                till = Socket(ws)
                await till.call("auth", token=token)
                await measure(till, database, journal, generated, changed)
            await reconnect_storm(session, url, database, journal, generated, tills)
            async with session.ws_connect(f"{url}/api/ws", compress=15) as ws:
                till = Socket(ws)
                await till.call("auth", token=token)
                times = []
                for _ in range(2):
                    started = time.perf_counter()
                    await pull_changes(till, None)
                    times.append(time.perf_counter() - started)
                print(f"full copy over a deflating socket (both ends in this process): "
                      f"{best(times) * 1000:.0f} ms")
    finally:
        await server.close()


async def paired_till(session: aiohttp.ClientSession, url: str, database: Path) -> str:
    code = create_pairing_code(database)
    async with session.post(f"{url}/api/pair", json={"code": code, "name": "B"}) as reply:
        return str((await reply.json())["token"])


async def reconnect_storm(session: aiohttp.ClientSession, url: str, database: Path,
                          journal: Any, generated: list[Any], count: int) -> None:
    """`count` tills reconnecting at once (a node restarted) with the version they hold,
    after 200 prices changed, against the same tills each pulling catalogue/export (as
    every till did at every auth before versions); and a scan from one more till meanwhile."""
    tokens = [await paired_till(session, url, database) for _ in range(count + 1)]
    async with session.ws_connect(f"{url}/api/ws") as ws:
        first = Socket(ws)
        await first.call("auth", token=tokens[0])
        version, _ = await pull_changes(first, None)
    repriced = [{**product, "price": product["price"] + 2} for product in generated[:200]]
    await import_products(journal, repriced)

    async def one_till(token: str, pull: Any) -> int:
        async with session.ws_connect(f"{url}/api/ws", compress=15) as ws:
            till = Socket(ws)
            await till.call("auth", token=token)
            await pull(till)
            return wire_bytes(till.texts[1:])[1]

    async def scans(token: str, stop: asyncio.Event) -> list[float]:
        async with session.ws_connect(f"{url}/api/ws") as ws:
            till = Socket(ws)
            await till.call("auth", token=token)
            waits = []
            while not stop.is_set():
                started = time.perf_counter()
                await till.call("catalogue/lookup", barcode=generated[7]["barcode"])
                waits.append(time.perf_counter() - started)
                await asyncio.sleep(0.02)
            return waits

    async def storm(pull: Any) -> tuple[float, int, float]:
        stop = asyncio.Event()
        scanning = asyncio.create_task(scans(tokens[-1], stop))
        await asyncio.sleep(0.1)
        started = time.perf_counter()
        sent = await asyncio.gather(*(one_till(token, pull) for token in tokens[:count]))
        took = time.perf_counter() - started
        stop.set()
        return took, sum(sent), max(await scanning)

    async def deltas(till: Socket) -> None:
        await pull_changes(till, version)

    async def exports(till: Socket) -> None:
        await pull_export(till)

    delta_time, delta_bytes, delta_scan = await storm(deltas)
    mib = 2**20
    print(f"{count} tills reconnecting at once after 200 price changes (deflated bytes):")
    print(f"  with their version : {delta_bytes / mib:8.2f} MiB in {delta_time:5.1f} s, "
          f"slowest scan meanwhile {delta_scan * 1000:.0f} ms", flush=True)
    # At 1M this is sixty times 195 MiB of JSON: minutes (the 7.8 GB in 7 minutes).
    export_time, export_bytes, export_scan = await storm(exports)
    print(f"  each a full export : {export_bytes / mib:8.2f} MiB in {export_time:5.1f} s, "
          f"slowest scan meanwhile {export_scan * 1000:.0f} ms")
    print(f"  = {delta_bytes / export_bytes:.4f} of the bytes, "
          f"{delta_time / export_time:.3f} of the time")


async def measure(till: Socket, database: Path, journal: Any, generated: list[Any],
                  changed: int) -> None:
    copies, exports = [], []
    for _ in range(3):
        till.texts.clear()
        started = time.perf_counter()
        version, rows = await pull_changes(till, None)
        copies.append(time.perf_counter() - started)
        copy_texts = list(till.texts)
        till.texts.clear()
        started = time.perf_counter()
        exported = await pull_export(till)
        exports.append(time.perf_counter() - started)
        export_texts = list(till.texts)
    raw_all = best([raw_read(database, None) for _ in range(3)])
    copy_raw, copy_deflated = wire_bytes(copy_texts)
    export_raw, export_deflated = wire_bytes(export_texts)
    mib = 2**20
    print(f"full copy, {rows} products ({len(copy_texts)} pages) / export {exported} "
          f"({len(export_texts)} pages):")
    print(f"  bytes raw      {copy_raw / mib:7.2f} MiB / {export_raw / mib:7.2f} MiB "
          f"= {copy_raw / export_raw:.2f}")
    print(f"  bytes deflated {copy_deflated / mib:7.2f} MiB / {export_deflated / mib:7.2f} MiB "
          f"= {copy_deflated / export_deflated:.2f}")
    goal = copy_deflated / (FIRST_COPY_GOAL_MB * 1e6)
    print(f"  a first copy on the wire: {copy_deflated / 1e6:.1f} MB deflated, {goal:.2f}x the "
          f"{FIRST_COPY_GOAL_MB} MB goal: {verdict(goal)}")
    print(f"  time {best(copies) * 1000:.0f} ms (export {best(exports) * 1000:.0f} ms); raw "
          f"sqlite3 reading the same rows {raw_all * 1000:.0f} ms: "
          f"{best(copies) / raw_all:.1f}x raw (export {best(exports) / raw_all:.1f}x)")

    # A head-office-like change of `changed` prices, in pages of 5,000 events.
    repriced = [{**product, "price": product["price"] + 1} for product in generated[:changed]]
    # The node pings its tills every 10 s and hangs up on one that does not answer: this
    # till reads (and so answers) only in its calls, and at 1M the import is longer.
    answering = asyncio.create_task(till.answer_pings())
    for start in range(0, changed, 5000):
        await import_products(journal, repriced[start:start + 5000])
    answering.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await answering
    deltas, firsts = [], []
    for attempt in range(3):
        till.texts.clear()
        started = time.perf_counter()
        page = await till.call("catalogue/changes", since=version, limit=5000)
        first = time.perf_counter() - started
        if attempt == 0:
            print(f"  first page of a {changed}-product change, worked out: "
                  f"{first * 1000:.0f} ms")
        firsts.append(first)
        assert not page["full"] and not page["behind"]
        till.texts.clear()
        started = time.perf_counter()
        _, delta_rows = await pull_changes(till, version)
        deltas.append(time.perf_counter() - started)
    delta_raw, delta_deflated = wire_bytes(till.texts)
    raw_delta = best([raw_read(database, [p["id"] for p in repriced]) for _ in range(3)])
    print(f"{changed}-product change: {delta_rows} rows, {delta_raw / mib:.2f} MiB raw, "
          f"{delta_deflated / mib:.2f} MiB deflated")
    print(f"  first page again (another till, same version): {best(firsts) * 1000:.0f} ms")
    print(f"  every page {best(deltas) * 1000:.0f} ms; raw sqlite3 reading the same rows "
          f"{raw_delta * 1000:.0f} ms: {best(deltas) / raw_delta:.1f}x raw")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.catalogue_delta",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--products", type=int, default=100_000)
    parser.add_argument("--changed", type=int, default=20_000)
    parser.add_argument("--tills", type=int, default=60, help="tills reconnecting at once")
    args = parser.parse_args(argv)
    folder = Path(tempfile.mkdtemp(dir=ROOT, prefix=".bench-catalogue-delta-"))
    try:
        asyncio.run(run(folder, args.products, args.changed, args.tills))
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main(sys.argv[1:])
