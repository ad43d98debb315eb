"""Closures (edge/fiscal/closing.py, closures.py, closure_counting.py): days, months and
years, each sale counted once in the store's one chain of closures.

Journals are built with the journal API: tills' sales arrive as two nodes'
signed chains (`node-a`, `node-b`), applied as a peer link would, with the
times they were recorded; the closing node's own chain holds its closures.
Business days run from 04:00 UTC to 04:00 UTC (cut-off 4, UTC store).
"""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import UTC
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from signing_support import SignedChain, identity
from test_fiscal_totals import LINES, refund_body, sale_body

from edge.fiscal import closures
from edge.fiscal.closing import Request, close_period, status_in_words
from edge.fiscal.closures import Closure
from edge.fiscal.periods import Calendar
from edge.fiscal.totals import empty, totals_of
from edge.journal.chain import Event
from edge.journal.store import Journal
from edge.messages import EdgeError

CALENDAR = Calendar(4, "01-01", UTC)


def at(day: str, hour: int = 10, minute: int = 0) -> str:
    """A time of December 2024 (`day` "12-30"), or of January 2025 (`day` "01-01")."""
    year = 2025 if day.startswith("01-") else 2024
    return f"{year}-{day}T{hour:02d}:{minute:02d}:00.000Z"


class Tills:
    """Two nodes' chains of sales, with fixed times."""

    def __init__(self) -> None:
        self.chains = {name: SignedChain(name) for name in ("node-a", "node-b")}
        self.number = 0

    def sale(self, time: str, node: str = "node-a", price: int = 250, **extra: Any) -> Event:
        self.number += 1
        body = {**sale_body(f"s{self.number}@T01", [(price, 1, 550)], "card", self.number),
                **extra}
        return self.chains[node].add("sale_completed", body, time=time)

    def refund(self, time: str, price: int, node: str = "node-a") -> Event:
        self.number += 1
        body = refund_body(f"r{self.number}#refund", price, 1, 550)
        return self.chains[node].add("sale_refunded", body, time=time)

    def resent(self, event: Event, node: str, time: str) -> Event:
        """The same sale recorded by another node (a till resending after a failover)."""
        return self.chains[node].add(event.type, {**event.body, "resent": True}, time=time)

    def events(self, node: str) -> list[Event]:
        return list(self.chains[node].events)


async def opened(path: Path, name: str = "closer") -> Journal:
    journal = Journal(path / f"{name}.sqlite3", origin=name, trust=identity(name))
    await journal.open()
    return journal


async def apply(journal: Journal, events: list[Event]) -> None:
    await journal.write(lambda tx: [tx.apply(event) for event in events])


async def close(journal: Journal, kind: str, period: str | None = None,
                **fields: Any) -> Closure:
    return await close_period(journal, CALENDAR, Request(kind, period, **fields))


async def refused(journal: Journal, kind: str, period: str | None = None,
                  **fields: Any) -> EdgeError:
    with pytest.raises(EdgeError) as caught:
        await close(journal, kind, period, **fields)
    return caught.value


async def own_events(journal: Journal) -> list[Event]:
    return [event async for event in journal.events(journal.origin)]


def net(closure: Closure) -> tuple[int, int]:
    figures = closure.body["totals"]["net"]
    return figures["count"], figures["total"]


def test_days_chain_their_grand_totals_and_sum_to_their_month_and_year(tmp_path: Path) -> None:
    tills = Tills()
    before = tills.sale(at("12-29"), price=100)  # before the store's first closure: late
    d30 = [tills.sale(at("12-30"), price=200), tills.sale(at("12-31", 2), price=300)]  # 02:00
    refund = tills.refund(at("12-30", 18), 50)
    tills.sale(at("12-30", 19), price=999, training=True)  # never counted
    d31 = [tills.sale(at("12-31", 10), price=400)]
    late = tills.sale(at("12-30", 20), node="node-b", price=70)  # node-b offline until after
    first_of_january = tills.sale(at("01-01", 3), price=500)  # 03:00: still December 31st

    async def run() -> None:
        journal = await opened(tmp_path)
        try:
            await apply(journal, tills.events("node-a"))
            day30 = await close(journal, "day", "2024-12-30")
            assert day30.body["number"] == 1 and day30.body["previous"] is None
            assert net(day30) == (4, 100 + 200 + 300 - 50)
            assert day30.body["late"] == {"count": 1, "total": 100}
            assert day30.body["totals"]["refunds"]["total"] == -50
            assert (day30.body["grand_total"], day30.body["grand_total_abs"]) == (550, 650)
            await apply(journal, tills.events("node-b"))  # the offline till's sale arrives
            day31 = await close(journal, "day")  # the next one
            assert day31.body["period"] == "2024-12-31"
            assert day31.body["previous"] == day30.hash and day31.body["number"] == 2
            assert net(day31) == (3, 400 + 70 + 500)
            assert day31.body["late"] == {"count": 1, "total": 70}
            assert day31.body["grand_total"] == 550 + 970
            assert day31.body["grand_total_abs"] == 650 + 970
            assert day31.body["covers"]["node-b"]["seq"] == 2
            assert day31.body["covers"]["node-a"]["hash"] == tills.events("node-a")[-1].hash
            month = await close(journal, "month")
            assert month.body["period"] == "2024-12"
            assert month.body["parts"] == [day30.hash, day31.hash]
            assert net(month) == (7, 550 + 970)
            assert month.body["late"] == {"count": 2, "total": 170}
            assert month.body["grand_total"] == day31.body["grand_total"]
            assert month.body["covers"] == day31.body["covers"]
            year = await close(journal, "year", "2024")
            assert year.body["totals"] == month.body["totals"]
            assert year.body["parts"] == [month.hash]
            # Whatever was counted, each sale once, training never.
            everything = [before, *d30, refund, *d31, late, first_of_january]
            assert year.body["totals"]["net"] == totals_of(e.body for e in everything)["net"]
            # The closures are events of this node's chain, and the projection holds them.
            assert [e.type for e in await own_events(journal)][-4:] == ["closure_made"] * 4
            listed = [c.period for c in closures.listing(reader(journal), "day", 5)]
            assert listed == ["2024-12-31", "2024-12-30"]
        finally:
            await journal.close()

    asyncio.run(run())


def reader(journal: Journal) -> sqlite3.Connection:
    return sqlite3.connect(f"file:{journal.path}?mode=ro", uri=True)


def test_what_may_not_be_closed_is_refused_in_words(tmp_path: Path) -> None:
    tills = Tills()
    tills.sale(at("12-30"))

    async def run() -> None:
        journal = await opened(tmp_path)
        try:
            await apply(journal, tills.events("node-a"))
            error = await refused(journal, "month", "2024-12")
            assert error.code == "period_incomplete" and "no day" in error.message
            error = await refused(journal, "day", "2024-12-30", missing=["edge-b.local"])
            assert error.code == "not_caught_up" and "edge-b.local" in error.message
            forced = await close(journal, "day", "2024-12-30", missing=["edge-b.local"],
                                 alone=True, made_by="c9")
            assert forced.body["alone"] == ["edge-b.local"] and forced.body["made_by"] == "c9"
            error = await refused(journal, "day", "2024-12-30")
            assert (error.code, error.data) == ("period_closed", {"closure": forced.hash})
            error = await refused(journal, "day", "2024-12-29")
            assert error.code == "closure_out_of_order" and "2024-12-30" in error.message
            error = await refused(journal, "day", "2025-01-02")
            assert error.code == "closure_out_of_order" and error.data == {"first": "2024-12-31"}
            error = await refused(journal, "day", "2999-01-01")
            assert error.code == "period_not_over" and "2999-01-02T04:00" in error.message
            error = await refused(journal, "month", "2024-12")
            assert error.code == "period_incomplete" and "2024-12-31" in error.message
            error = await refused(journal, "day", "2024-13-01")
            assert error.code == "invalid_field"
        finally:
            await journal.close()

    asyncio.run(run())


def test_two_nodes_closing_at_once_end_with_one_closure(tmp_path: Path) -> None:
    """Each closes the day with what it holds; once they exchange, both keep the same
    winner, and the next day's closure counts what only the loser had counted."""
    tills = Tills()
    for hour in (9, 10, 11):
        tills.sale(at("12-30", hour))
    tills.sale(at("12-30", 12), node="node-b", price=777)  # only `two` holds it
    tills.sale(at("12-31", 9))

    async def run() -> None:
        one, two = await opened(tmp_path, "one"), await opened(tmp_path, "two")
        try:
            await apply(one, tills.events("node-a"))
            await apply(two, [*tills.events("node-a"), *tills.events("node-b")])
            first = await close(one, "day", "2024-12-30")
            second = await close(two, "day", "2024-12-30")
            assert net(first) == (3, 750) and net(second) == (4, 750 + 777)
            await apply(one, [*tills.events("node-b"), *await own_events(two)])
            await apply(two, await own_events(one))
            winner = min(first, second, key=lambda closure: closure.hash)
            for journal in (one, two):
                db = reader(journal)
                assert closures.winner(db, "day", "2024-12-30").hash == winner.hash
                shown = closures.listing(db, "day", 1)
                assert [(c.hash, c.winner) for c in shown] == sorted(
                    [(first.hash, first is winner), (second.hash, second is winner)])
                db.close()
            next_day = await close(one, "day")
            assert next_day.body["previous"] == winner.hash
            # Over the winning chain, every sale once: the loser's extra sale comes next.
            assert net(winner)[1] + net(next_day)[1] == 750 + 777 + 250
            assert (next_day.body["late"]["count"] == 1) == (winner is first)
            await apply(two, await own_events(one))
            error = await refused(two, "day", "2024-12-31")
            assert (error.code, error.data) == ("period_closed", {"closure": next_day.hash})
        finally:
            await one.close()
            await two.close()

    asyncio.run(run())


def test_a_node_restored_from_an_old_backup_is_refused_in_words(tmp_path: Path) -> None:
    tills = Tills()
    for hour in range(9, 14):
        tills.sale(at("12-30", hour))  # node-a#2-#6

    async def run() -> None:
        newest, restored = await opened(tmp_path, "newest"), await opened(tmp_path, "old")
        try:
            await apply(newest, tills.events("node-a"))
            day = await close(newest, "day", "2024-12-30")
            # The old backup held node-a up to #3, and then learned of the closure.
            await apply(restored, [*tills.events("node-a")[:3], *await own_events(newest)])
            error = await refused(restored, "day", "2024-12-31")
            assert error.code == "covers_backwards"
            assert error.message == (
                "this node lacks events 4-6 of node node-a that the day closure of 2024-12-30 "
                "covered: it was restored from an older backup or its journal lost its end; "
                "bring the other nodes back online (they hold them), or restore the newest "
                "backup")
            assert day.body["covers"]["node-a"]["seq"] == 6
            db = reader(restored)  # `edge status` says it too
            assert status_in_words(db)["behind the last closure"] == error.message
            db.close()
            await apply(restored, tills.events("node-a")[3:])  # a peer brings them back
            assert net(await close(restored, "day", "2024-12-31")) == (0, 0)
        finally:
            await newest.close()
            await restored.close()

    asyncio.run(run())


def test_a_day_without_sales_gets_its_empty_z(tmp_path: Path) -> None:
    async def run() -> None:
        journal = await opened(tmp_path)
        try:
            empty_day = await close(journal, "day", "2024-12-25")
            assert empty_day.body["totals"] == empty() and empty_day.body["grand_total"] == 0
            assert empty_day.body["late"] == {"count": 0, "total": 0}
        finally:
            await journal.close()

    asyncio.run(run())


# Acceptance 2: generated days of sales, refunds, late offline sales and training sales.
DAYS = ["12-27", "12-28", "12-29", "12-30", "12-31"]


@st.composite
def days_of_sales(draw: st.DrawFn) -> list[dict[str, Any]]:
    """Sales: the day (index) each was made and its hour (24-27: after midnight, still
    that business day), the days it waited before reaching the closing node (an offline
    till's, through node-b), whether training or a refund, and whether a second node
    recorded it too."""
    return [{"day": draw(st.integers(0, len(DAYS) - 1)), "hour": draw(st.integers(4, 27)),
             "wait": draw(st.sampled_from([0, 0, 0, 1, 2])),
             "kind": draw(st.sampled_from(["sale", "sale", "refund", "training"])),
             "line": draw(LINES)[0], "twice": draw(st.booleans())}
            for _ in range(draw(st.integers(0, 14)))]


def sale_time(day: int, hour: int, minute: int) -> str:
    date = 27 + day + hour // 24
    month_day = f"12-{date:02d}" if date <= 31 else f"01-{date - 31:02d}"
    return at(month_day, hour % 24, minute % 60)


@settings(max_examples=15, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(days_of_sales())
def test_closures_agree_with_the_events_and_training_never_counts(
        tmp_path_factory: pytest.TempPathFactory, made: list[dict[str, Any]]) -> None:
    tills = Tills()
    due: list[tuple[int, Event]] = []  # (the day it reaches the closing node, the event)
    counted: list[dict[str, Any]] = []
    for number, sale in enumerate(made):
        time = sale_time(sale["day"], sale["hour"], number)
        arrives = min(len(DAYS) - 1, sale["day"] + sale["wait"])
        node = "node-b" if arrives > sale["day"] else "node-a"
        price, quantity, _ = sale["line"]
        if sale["kind"] == "refund":
            event = tills.refund(time, price * quantity, node)
        else:
            event = tills.sale(time, node, price * quantity,
                               **({"training": True} if sale["kind"] == "training" else {}))
        due.append((arrives, event))
        if sale["twice"]:
            due.append((arrives, tills.resent(event, "node-a" if node == "node-b" else
                                              "node-b", time)))
        if sale["kind"] != "training":
            counted.append(event.body)
    folder = tmp_path_factory.mktemp("property")
    arrived: dict[str, int] = {}  # sale id -> the day its first copy reached the node

    async def run() -> list[Closure]:
        journal = await opened(folder)
        made_closures = []
        held = {"node-a": 0, "node-b": 0}
        try:
            for index, day in enumerate([*DAYS, "01-01"]):
                # A chain arrives in order: what its origin wrote before comes along.
                upto = {e.origin: e.seq for arrives, e in sorted(
                    due, key=lambda d: d[1].seq) if arrives <= index}
                if index == len(DAYS):
                    upto = {node: len(tills.events(node)) for node in held}
                news = [e for node in held for e in tills.events(node)
                        if held[node] < e.seq <= upto.get(node, 0)]
                for event in news:
                    if "id" in event.body:
                        arrived.setdefault(event.body["id"], index)
                    held[event.origin] = event.seq
                await apply(journal, news)
                made_closures.append(await close(journal, "day", sale_day(day)))
            made_closures.append(await close(journal, "month", "2024-12"))
        finally:
            await journal.close()
        return made_closures

    *days, month = asyncio.run(run())
    grand = abs_grand = 0
    for closure in days:
        totals = closure.body["totals"]
        grand += totals["net"]["total"]
        abs_grand += totals["sales"]["total"] - totals["refunds"]["total"]
        assert (closure.body["grand_total"], closure.body["grand_total_abs"]) == (grand,
                                                                                  abs_grand)
    whole = totals_of(counted)
    assert sum(net(closure)[0] for closure in days) == whole["net"]["count"]
    assert (grand, abs_grand) == (whole["grand_total"], whole["grand_total_abs"])
    made_on = {body["id"]: sale["day"] for body, sale in zip(
        [e.body for _, e in due if not e.body.get("resent")], made, strict=True)}
    late = [body for body in counted if arrived[body["id"]] > made_on[body["id"]]]
    assert sum(closure.body["late"]["count"] for closure in days) == len(late)
    assert sum(closure.body["late"]["total"] for closure in days) == \
        sum(body["totals"]["total"] for body in late)
    december = [closure for closure in days if closure.period.startswith("2024-12")]
    assert month.body["totals"]["net"]["total"] == sum(net(c)[1] for c in december)
    assert month.body["grand_total"] == december[-1].body["grand_total"]


def sale_day(day: str) -> str:
    return f"2025-{day}" if day.startswith("01-") else f"2024-{day}"
