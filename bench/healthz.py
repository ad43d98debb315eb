"""/healthz of a node with head office configured and a million events unsent, against a bare one.

The loaded node is a real `edge serve` on a copy of the catch-up bench's
cached journal (`bench/catchup_journal.py`: `--events` generated sales
events, made once), configured with a head office that does not answer:
every event of its journal waits to be sent, as after a long outage. The
bare node is a fresh demo node with no head office. Both answer /healthz
in turns, one request at a time on a kept-alive connection; the p50 and
p99 of the loaded node's answers over the bare node's are the figures
(goal: at most 2x). /metrics the same way.

For comparison it also times, on the same file, the count /healthz made
before issue 12 (a scan of every unsent event), and the backlog as `edge
status` now reads it from the file (edge/sync/backlog.py).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import shutil
import sqlite3
import tempfile
import time
from pathlib import Path

import aiohttp

from bench.catchup_journal import cached_sender
from bench.nodes import ROOT, BenchNode, free_port, percentile, verdict
from edge.sync.backlog import unsent

GOAL = 2.0  # the loaded /healthz may take at most this many times a bare one
ROUND = 50  # requests to one node before the other's turn


def headoffice_config(folder: Path) -> Path:
    """The demo store's settings plus a head office nobody answers for (nothing listens)."""
    (folder / "headoffice.token").write_text("bench-token\n")
    config = folder / "edge.toml"
    config.write_text(
        '[store]\nid = "demo-boulangerie"\ndemo = true\n[headoffice]\n'
        f'url = "https://127.0.0.1:{free_port()}"\ntoken_file = "headoffice.token"\n')
    return config


def scan_then_kept(database: Path) -> tuple[float, float, int]:
    """Seconds for the old count (a scan past the cursor) and for `edge status`'s; the count."""
    db = sqlite3.connect(f"file:{database}?mode=ro", uri=True)
    try:
        timings = []
        for _ in range(2):  # the second one, with the file in the page cache
            started = time.perf_counter()
            (count,) = db.execute(
                "SELECT COUNT(*) FROM events WHERE position > (SELECT acknowledged_position "
                "FROM headoffice_sync) AND origin NOT GLOB 'headoffice-*'").fetchone()
            scan = time.perf_counter() - started
            started = time.perf_counter()
            kept, _ = unsent(db)
            timings.append((scan, time.perf_counter() - started))
        assert kept == count, (kept, count)
        return *timings[-1], count
    finally:
        db.close()


async def latencies(session: aiohttp.ClientSession, url: str, count: int) -> list[float]:
    found = []
    for _ in range(count):
        started = time.perf_counter()
        async with session.get(url) as response:
            await response.read()
            assert response.status == 200
        found.append(time.perf_counter() - started)
    return found


async def compare(loaded: BenchNode, bare: BenchNode, path: str, requests: int) -> None:
    async with aiohttp.ClientSession() as a, aiohttp.ClientSession() as b:
        await latencies(a, f"{loaded.url}{path}", 100)  # warm: connections, caches
        await latencies(b, f"{bare.url}{path}", 100)
        heavy: list[float] = []
        light: list[float] = []
        for _ in range(max(1, requests // ROUND)):  # in turns: drift falls on both alike
            heavy += await latencies(a, f"{loaded.url}{path}", ROUND)
            light += await latencies(b, f"{bare.url}{path}", ROUND)
    for name, fraction in (("p50", 0.5), ("p99", 0.99)):
        ratio = percentile(heavy, fraction) / percentile(light, fraction)
        print(f"  {path} {name}: {percentile(heavy, fraction) * 1000:.3f} ms loaded, "
              f"{percentile(light, fraction) * 1000:.3f} ms bare: {ratio:.2f} x "
              f"(goal <= {GOAL:g} x: {verdict(ratio, GOAL)})", flush=True)


async def patiently(node: BenchNode, seconds: float = 1800) -> None:
    """Start it, waiting as long as its first open of a large journal takes."""
    try:
        await node.start()
        return
    except RuntimeError:  # not answering yet after BenchNode's 20 s
        pass
    deadline = time.monotonic() + seconds
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline:
            assert node.proc is not None and node.proc.poll() is None, "the node exited"
            with contextlib.suppress(aiohttp.ClientError):
                async with session.get(f"{node.url}/healthz") as response:
                    if response.status == 200:
                        return
            await asyncio.sleep(0.5)
    raise RuntimeError(f"{node.url} did not start within {seconds:.0f} s")


async def run(events: int, requests: int) -> None:
    folder, facts = await cached_sender(events)
    print(f"journal: {facts['events']:,} generated events, {facts['bytes'] / 1e9:.2f} GB "
          f"(cached in {folder})", flush=True)
    with tempfile.TemporaryDirectory(dir=ROOT, prefix=".bench-") as tmp:
        store = Path(tmp) / "store"
        started = time.perf_counter()
        shutil.copytree(folder / "data", store / "data")
        print(f"copied in {time.perf_counter() - started:.0f} s", flush=True)
        scan, kept, count = scan_then_kept(store / "data" / "edge.sqlite3")
        print(f"backlog {count:,} events: the count /healthz made before (a scan) "
              f"{scan * 1000:.0f} ms; read as `edge status` now does {kept * 1000:.2f} ms",
              flush=True)
        loaded = BenchNode(store, free_port())
        loaded.args += ["--config", str(headoffice_config(store))]
        bare = BenchNode(Path(tmp) / "bare", free_port())
        try:
            started = time.perf_counter()
            await patiently(loaded)
            print(f"loaded node answering {time.perf_counter() - started:.1f} s after its "
                  "start (a cached journal from an older edge is migrated first)", flush=True)
            await bare.start()
            async with aiohttp.ClientSession() as session, session.get(
                f"{loaded.url}/healthz"
            ) as response:
                office = (await response.json())["headoffice"]
            print(f"loaded node's /healthz: backlog_events {office['backlog_events']:,}, "
                  f"oldest_unsent {office['oldest_unsent']}, state {office['state']}",
                  flush=True)
            assert office["backlog_events"] >= count
            for path in ("/healthz", "/metrics"):
                await compare(loaded, bare, path, requests)
        finally:
            loaded.stop()
            bare.stop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000,
                        help="journal events, all unsent (generated once, then cached)")
    parser.add_argument("--requests", type=int, default=2000,
                        help="requests measured per node and path")
    args = parser.parse_args(argv)
    asyncio.run(run(args.events, args.requests))


if __name__ == "__main__":
    main()
