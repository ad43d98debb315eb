"""A new peer catches up a node holding a year's journal: memory and the till's scans meanwhile.

The sender is a real `edge serve` whose data folder holds `--events` journal
events (10 million by default: a year of a busy store), generated once and
cached (`bench/catchup_journal.py`). A new, empty node listing the sender
as its peer starts and catches up, while a till on the sender scans a
product (`catalogue/lookup`) every 20 ms. The bench prints the peak resident
memory (VmHWM in /proc/<pid>/status) of both nodes, what the sender sent on
that link, the most events it held at once for it (the sender's peak RSS
growth must stay under 100 MB), and what the catch-up costs the scans.

That cost is measured interleaved: the catch-up runs for a few seconds,
then is paused (the new peer stopped with SIGSTOP: its socket fills, the
sender's sends wait, the sender does nothing for it) for a little less
than the peers' silence limit, and so on to the end, the till scanning all
through. The scans' p50 and p99 while running ÷ while paused are the
catch-up's cost; whatever else the machine does (other processes on these
2 cores) falls on both kinds of window alike. Scans for some seconds before
and after the catch-up are printed too: those ratios mix in the machine's
drift between then and now.

In a store the two nodes are two machines. Here they share the cores, so
by default the new peer runs on the last CPU and the sender and this bench
on the others (`--no-pin` to let them mix); while the peer is paused, a busy
loop takes its core, as the peer does while it applies, so other work has
the same cores left in both kinds of window.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import sqlite3
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

from bench.catchup_journal import append_sales, cached_sender, node_id
from bench.nodes import BARCODES, ROOT, BenchNode, free_port, percentile
from edge.replication.catchup import READER_NICENESS
from edge.till_client import TillClient

SCAN_EVERY = 0.02  # seconds between two scans of the measuring till
RSS_GROWTH_LIMIT_MB = 100
SETTLE = 0.25  # seconds at the start of each window left out (the switch's own effects)


def memory_kb(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM (peak) of a process, in kB."""
    found = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            found[key] = int(value.split()[0])
    return found


async def scan(url: str, token: str, until: asyncio.Event,
               scans: list[tuple[float, float]]) -> None:
    """Scan every SCAN_EVERY until told to stop; each scan as (when it started, its latency)."""
    async with TillClient([url], token, "alice", "1234", timeout=30) as till:
        while not until.is_set():
            started = time.perf_counter()
            barcode = BARCODES[len(scans) % len(BARCODES)]
            await till.call("catalogue/lookup", barcode=barcode)
            scans.append((started, time.perf_counter() - started))
            await asyncio.sleep(max(0.0, SCAN_EVERY - (time.perf_counter() - started)))


async def scans_for(url: str, token: str, seconds: float) -> list[float]:
    scans: list[tuple[float, float]] = []
    until = asyncio.Event()
    task = asyncio.create_task(scan(url, token, until, scans))
    await asyncio.sleep(seconds)
    until.set()
    await task
    return [latency for _, latency in scans]


def taken_by(db_path: Path, own_origin: str) -> int:
    """Events a node holds of other origins than its own: what replication brought it."""
    db = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    with contextlib.closing(db):
        row = db.execute("SELECT SUM(last_seq) FROM origins WHERE origin != ?",
                         (own_origin,)).fetchone()
        return row[0] or 0


def held_of(db_path: Path, origin: str) -> int:
    db = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    with contextlib.closing(db), contextlib.suppress(sqlite3.OperationalError):
        row = db.execute("SELECT last_seq FROM origins WHERE origin = ?", (origin,)).fetchone()
        return row[0] if row else 0
    return 0


async def peer_view(sender: BenchNode, peer_id: str) -> dict | None:
    async with aiohttp.ClientSession() as session, session.get(
        f"{sender.url}/healthz"
    ) as response:
        for peer in (await response.json()).get("peers", []):
            if peer["node_id"] == peer_id:
                return peer
    return None


def pin(node: BenchNode, cpus: set[int] | None) -> None:
    if cpus:
        node.args = ["taskset", "-c", ",".join(map(str, sorted(cpus))), *node.args]


TICK = os.sysconf("SC_CLK_TCK")


def thread_cpu(pid: int) -> Counter[str]:
    """CPU seconds so far of a node's threads: its event loop, its catch-up reader, the rest."""
    found: Counter[str] = Counter()
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError, IndexError):
            # Fields after the command's ")": 14 utime, 15 stime, 19 nice (from field 3).
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
            kind = ("sender loop" if task.name == str(pid)
                    else "sender reader" if int(fields[16]) == READER_NICENESS
                    else "sender other threads")
            found[kind] += (int(fields[11]) + int(fields[12])) / TICK
    return found


def cores(cpus: list[int], name: str) -> Counter[str]:
    """CPU seconds so far of these cores: busy, and the part of it spent in softirq."""
    found: Counter[str] = Counter()
    for line in Path("/proc/stat").read_text().splitlines():
        cpu, *values = line.split()
        if cpu.startswith("cpu") and cpu[3:].isdigit() and int(cpu[3:]) in cpus:
            ticks = [int(value) for value in values]
            # Busy: all but idle and iowait.
            found[f"{name} busy"] += (sum(ticks[:8]) - ticks[3] - ticks[4]) / TICK
            found[f"{name} softirq"] += ticks[6] / TICK
    return found


@dataclass
class Mark:
    """The sender's counters at one moment."""

    at: float
    sent: int
    cpu: Counter[str]


@dataclass
class Windows:
    """Alternating windows of one kind (the catch-up running, or paused), summed."""

    seconds: float = 0.0
    count: int = 0
    sent: int = 0
    cpu: Counter[str] = field(default_factory=Counter)
    latencies: list[float] = field(default_factory=list)  # of the scans made in them

    def add(self, begin: Mark, end: Mark, scans: list[tuple[float, float]]) -> None:
        """One more window, and the scans made in it past its first SETTLE."""
        self.count += 1
        self.seconds += end.at - begin.at
        self.sent += end.sent - begin.sent
        self.cpu.update({kind: end.cpu[kind] - begin.cpu[kind] for kind in end.cpu})
        self.latencies += [latency for started, latency in scans
                           if begin.at + SETTLE <= started < end.at]

    def per_second(self, value: float) -> float:
        return value / max(self.seconds, 1e-9)


async def interleaved(sender: BenchNode, peer: BenchNode, token: str, target: int,
                      max_seconds: float, run_seconds: float, pause_seconds: float,
                      peer_cpus: list[int], sender_cpus: list[int]) -> dict:
    """Catch up in alternating windows, running then paused, scanning all through.

    Paused: the new peer is stopped (SIGSTOP), its socket fills and the sender's
    sends wait, so the sender does nothing for it; the windows' counters show
    it. The machine's other load falls on both kinds of window alike, so the
    scans' running ÷ paused ratio is the catch-up's own cost. While the peer
    is paused a busy loop takes its core, as the peer itself does while it
    applies: other work then has the same cores left in both kinds of window.
    """
    origin = node_id(sender)
    peer_id = node_id(peer)
    burner = None
    if peer_cpus:
        burner = await asyncio.create_subprocess_exec(
            "taskset", "-c", ",".join(map(str, peer_cpus)), sys.executable, "-c",
            "while True: pass")
        os.kill(burner.pid, signal.SIGSTOP)
    windows = {True: Windows(), False: Windows()}
    scans: list[tuple[float, float]] = []
    until = asyncio.Event()
    scanning = asyncio.create_task(scan(sender.url, token, until, scans))

    async def mark() -> Mark:
        at = time.perf_counter()
        view = await peer_view(sender, peer_id) or {}
        cpu = await asyncio.to_thread(
            lambda: thread_cpu(sender.proc.pid)  # type: ignore[union-attr]
            + cores(sender_cpus, "sender's core") + cores(peer_cpus, "peer's core"))
        return Mark(at, view.get("events_sent", 0), cpu)

    started = time.perf_counter()
    sender_rss_max = peer_hwm = held = 0
    running = True
    last = await mark()
    next_report, next_ratios = started + 30, started + 300
    try:
        while True:
            await asyncio.sleep(run_seconds if running else pause_seconds)
            peer.signal(signal.SIGSTOP if running else signal.SIGCONT)
            if burner is not None:
                os.kill(burner.pid, signal.SIGCONT if running else signal.SIGSTOP)
            now = await mark()
            # Scans are listed as they end, in the order they start: those that started
            # before the switch are the closed window's (one still in flight is lost).
            closed = 0
            while closed < len(scans) and scans[closed][0] < now.at:
                closed += 1
            windows[running].add(last, now, scans[:closed])
            del scans[:closed]
            last, running = now, not running
            sender_now, peer_now, held = await asyncio.to_thread(
                lambda: (memory_kb(sender.proc.pid),  # type: ignore[union-attr]
                         memory_kb(peer.proc.pid),  # type: ignore[union-attr]
                         held_of(peer.data / "edge.sqlite3", origin)))
            sender_rss_max = max(sender_rss_max, sender_now["VmRSS"])
            peer_hwm = peer_now["VmHWM"]
            elapsed = time.perf_counter() - started
            if held >= target or elapsed >= max_seconds:
                break
            if time.perf_counter() >= next_report:
                next_report += 30
                print(f"  {elapsed:.0f} s: {held:,} of {target:,} events "
                      f"({held / windows[True].seconds:,.0f}/s while running)", flush=True)
            if time.perf_counter() >= next_ratios:
                # So that a long run stopped half-way still says something.
                next_ratios += 300
                print(f"  so far, {ratios(windows[True], windows[False])}", flush=True)
    finally:
        peer.signal(signal.SIGCONT)
        if burner is not None:
            burner.kill()
            await burner.wait()
        until.set()
        await scanning
    return {"elapsed": time.perf_counter() - started, "held": held,
            "running": windows[True], "paused": windows[False],
            "sender_rss_max": sender_rss_max, "peer_hwm": peer_hwm}


def ms(values: list[float], fraction: float) -> float:
    return percentile(values, fraction) * 1000


def ratios(running: Windows, paused: Windows) -> str:
    during, idle = running.latencies, paused.latencies
    if not during or not idle:
        return "no scans yet"
    return (f"till scan while running: p50 {ms(during, 0.5):.2f} ms, p99 {ms(during, 0.99):.2f} "
            f"ms ({len(during)} scans); while paused: p50 {ms(idle, 0.5):.2f} ms, p99 "
            f"{ms(idle, 0.99):.2f} ms ({len(idle)} scans); RUNNING / PAUSED: p50 "
            f"{ms(during, 0.5) / ms(idle, 0.5):.2f} x, "
            f"p99 {ms(during, 0.99) / ms(idle, 0.99):.2f} x")


def report_interleaved(run: dict, before: list[float], after: list[float]) -> None:
    running, paused = run["running"], run["paused"]
    during = running.latencies
    print(f"  interleaved: {running.count} windows running ({running.seconds:.0f} s), "
          f"{paused.count} paused ({paused.seconds:.0f} s); scans past the first "
          f"{SETTLE} s of each window")
    print(f"  {ratios(running, paused)}")
    for name, figures in (("before", before), ("after", after)):
        print(f"  {name} ({len(figures)} scans): p50 {ms(figures, 0.5):.2f} ms, p99 "
              f"{ms(figures, 0.99):.2f} ms; running / {name}: p50 "
              f"{ms(during, 0.5) / ms(figures, 0.5):.2f} x, p99 "
              f"{ms(during, 0.99) / ms(figures, 0.99):.2f} x")
    print(f"  events sent per second: {running.per_second(running.sent):,.0f} running, "
          f"{paused.per_second(paused.sent):,.0f} paused")
    kinds = sorted({*running.cpu, *paused.cpu})
    print("  CPU ms per second of window (running / paused): " + "; ".join(
        f"{kind} {running.per_second(running.cpu[kind]) * 1000:.0f} / "
        f"{paused.per_second(paused.cpu[kind]) * 1000:.0f}" for kind in kinds))


async def catch_up(events: int, baseline_seconds: float, max_seconds: float,
                   pinned: bool, run_seconds: float, pause_seconds: float) -> None:
    folder, facts = await cached_sender(events)
    print(f"sender journal: {facts['events']:,} generated events, "
          f"{facts['bytes'] / 1e9:.2f} GB, generated in {facts['seconds']:.0f} s "
          f"({facts['events'] / max(facts['seconds'], 0.001):,.0f} events/s)", flush=True)
    sender = BenchNode(folder, free_port(), [])
    cpus = sorted(os.sched_getaffinity(0))
    pinned = pinned and len(cpus) > 1
    peer_cpus, sender_cpus = (cpus[-1:], cpus[:-1]) if pinned else ([], cpus)
    print(f"load average before: {os.getloadavg()[0]:.2f}", flush=True)
    with tempfile.TemporaryDirectory(dir=ROOT, prefix=".bench-") as tmp:
        peer = BenchNode(Path(tmp) / "peer", free_port(), [sender.port])
        if pinned:
            pin(sender, set(sender_cpus))
            pin(peer, set(peer_cpus))
            os.sched_setaffinity(0, set(sender_cpus))
            print(f"pinned: new peer on CPU {peer_cpus[0]}, sender and bench on CPU "
                  f"{','.join(map(str, sender_cpus))}", flush=True)
        await sender.start()
        try:
            origin = node_id(sender)
            token = await sender.pair()
            target = held_of(sender.data / "edge.sqlite3", origin)
            before = await scans_for(sender.url, token, baseline_seconds)
            sender_before = memory_kb(sender.proc.pid)  # type: ignore[union-attr]
            await peer.start()
            run = await interleaved(sender, peer, token, target, max_seconds, run_seconds,
                                    pause_seconds, peer_cpus, sender_cpus)
            sender_after = memory_kb(sender.proc.pid)  # type: ignore[union-attr]
            await asyncio.sleep(1.0)  # the last batch's counters
            view = await peer_view(sender, node_id(peer)) or {}
            taken = taken_by(peer.data / "edge.sqlite3", node_id(peer))
            # The same again once it is over: the machine's own drift.
            after = await scans_for(sender.url, token, baseline_seconds)
        finally:
            peer.stop()
            sender.stop()

    held, running = run["held"], run["running"]
    done = "caught up" if held >= target else f"stopped after {max_seconds:.0f} s"
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    print(f"catch-up: {held:,} of {target:,} events in {run['elapsed']:.0f} s, "
          f"{running.seconds:.0f} s of it running ({held / running.seconds:,.0f} events/s "
          f"while running), {done}")
    print(f"  sender sent {view.get('events_sent', 0):,} events on that link, the peer took "
          f"{taken:,} ({view.get('events_sent', 0) / max(taken, 1):.3f} x); held at most "
          f"{view.get('outbox_high_water')} at once; links opened "
          f"{view.get('links_opened')}; batches that waited for a till "
          f"{view.get('catchup_yields')}")
    report_interleaved(run, before, after)
    growth_hwm = (sender_after["VmHWM"] - sender_before["VmHWM"]) / 1024
    growth_rss = (run["sender_rss_max"] - sender_before["VmRSS"]) / 1024
    growth = max(growth_hwm, growth_rss)
    print(f"  sender peak RSS {sender_after['VmHWM'] / 1024:.0f} MB "
          f"(= {sender_after['VmHWM'] / sender_before['VmHWM']:.2f} x before), growth "
          f"{growth:.0f} MB: {'OK' if growth <= RSS_GROWTH_LIMIT_MB else 'OVER'} "
          f"(limit {RSS_GROWTH_LIMIT_MB} MB)")
    print(f"  new peer peak RSS {run['peer_hwm'] / 1024:.0f} MB")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=10_000_000,
                        help="journal events of the sender (generated once, then cached)")
    parser.add_argument("--baseline-seconds", type=float, default=10.0)
    parser.add_argument("--max-seconds", type=float, default=3600.0,
                        help="stop measuring after this long even if not caught up")
    parser.add_argument("--no-pin", action="store_true",
                        help="let both nodes share every CPU")
    parser.add_argument("--run-seconds", type=float, default=3.0,
                        help="length of each window in which the catch-up runs")
    parser.add_argument("--pause-seconds", type=float, default=1.5,
                        help="length of each window in which the new peer is stopped "
                             "(under the peers' 2.5 s silence limit)")
    parser.add_argument("--append-to", type=Path, metavar="DATA_FOLDER",
                        help="only append --events events to that stopped node's journal "
                             "(it must hold one sale; tests/test_catchup.py uses it)")
    args = parser.parse_args(argv)
    if args.append_to:
        origin = (args.append_to / "node-id").read_text().strip()
        print(append_sales(args.append_to / "edge.sqlite3", origin, args.events))
        return
    asyncio.run(catch_up(args.events, args.baseline_seconds, args.max_seconds,
                         not args.no_pin, args.run_seconds, args.pause_seconds))


if __name__ == "__main__":
    main()
