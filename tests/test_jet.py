"""The technical event journal's own events (edge/fiscal/jet.py): a node's runs with its
version and configuration's digest, a clock jump, a till's offline period."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import orjson
from signing_support import identity
from test_shifts import node_with

from edge import __version__
from edge.api.server import NODE
from edge.config import Config
from edge.fiscal import jet
from edge.journal.chain import ChainHead
from edge.journal.store import Journal


def records(path: Path, *types: str) -> list[dict[str, Any]]:
    db = sqlite3.connect(path)
    try:
        rows = db.execute(f"SELECT body FROM events WHERE type IN ({', '.join('?' * len(types))})"
                          " ORDER BY position", types).fetchall()
    finally:
        db.close()
    return [orjson.loads(body) for (body,) in rows]


def test_the_configuration_digest_names_a_configuration_and_no_secret() -> None:
    config = Config()
    assert jet.config_digest(config) == jet.config_digest(Config())
    assert jet.config_digest(config) != jet.config_digest(config.with_overrides(port=9000))
    secret = config.with_overrides(headoffice_token="s3cret")
    assert jet.config_digest(secret) == jet.config_digest(
        config.with_overrides(headoffice_token="another"))


async def test_a_node_records_its_start_and_its_stop(tmp_path: Path) -> None:
    async with node_with(tmp_path) as node:
        config = node.app[NODE].config
    database = node.data_dir / "edge.sqlite3"
    (started,) = records(database, "node_started")
    assert started == {"version": __version__, "config_digest": jet.config_digest(config)}
    (stopped,) = records(database, "node_stopped")
    assert stopped["version"] == __version__


async def test_clock_jumps_and_offline_periods_are_recorded(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "j.sqlite3", origin="n1", trust=identity("n1"))
    await journal.open()
    try:
        clocks = {"wall": 1_800_000_000.0, "steady": 100.0}
        watch = jet.ClockWatch(journal, wall=lambda: clocks["wall"],
                               steady=lambda: clocks["steady"])
        clocks["wall"] += 65
        clocks["steady"] += 5  # a time server's minute: no jump
        await watch.look()
        clocks["steady"] += 5
        clocks["wall"] -= 600  # set back ten minutes
        await watch.look()

        periods = jet.OfflinePeriods(journal, quiet=0)
        head = ChainHead()
        for till, when in (("T01", "2026-03-01T10:05:00.000Z"), ("T01", "2026-03-01T10:01:00.000Z"),
                           ("T02", "2026-03-01T11:00:00.000Z")):
            event = head.next("n1", "sale_completed", {"till": till, "offline": True,
                                                       "till_time": when})
            head = ChainHead(event.seq, event.hash)
            periods.on_events([event])
        periods.on_events([head.next("n2", "sale_completed", {"till": "T03", "offline": True})])
        await periods.flush()
    finally:
        await journal.close()
    (jumped,) = records(tmp_path / "j.sqlite3", "clock_jumped")
    assert jumped["seconds"] == -605 and jumped["to"] < jumped["from"]
    offline = records(tmp_path / "j.sqlite3", "till_offline")
    assert sorted(offline, key=lambda body: body["till"]) == [
        {"till": "T01", "first": "2026-03-01T10:01:00.000Z", "last": "2026-03-01T10:05:00.000Z",
         "sales": 2},
        {"till": "T02", "first": "2026-03-01T11:00:00.000Z", "last": "2026-03-01T11:00:00.000Z",
         "sales": 1}]
