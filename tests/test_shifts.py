"""Shifts (cash sessions) on one node, with `fiscal.shifts` on: a till sells only within an
open shift; a shift opens with its float, moves cash with a reason, shows its X report,
closes with counts per tender and the difference, and never outlives its business day."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import orjson
import pytest
from aiohttp.test_utils import TestServer
from conftest import CommandFailed, NodeUnderTest, free_port
from test_refunds import new_id, refused, sell
from test_selling import BAGUETTE, ESPRESSO

from edge.api.server import make_app
from edge.config import Config
from edge.fiscal import shifts


@contextlib.asynccontextmanager
async def node_with(tmp_path: Path, **settings: object) -> AsyncIterator[NodeUnderTest]:
    """A demo-store node in this process with these settings (the `node` fixture's way)."""
    config = Config(data_dir=tmp_path / "data", advertise=False).with_overrides(**settings)
    app = make_app(config)
    server = TestServer(app, host="127.0.0.1", port=free_port())
    await server.start_server()
    try:
        async with aiohttp.ClientSession() as session:
            yield NodeUnderTest(f"http://127.0.0.1:{server.port}", config.data_dir, session, app)
    finally:
        await server.close()


def journal_types(node: NodeUnderTest) -> list[str]:
    db = sqlite3.connect(node.data_dir / "edge.sqlite3")
    try:
        return [row[0] for row in db.execute("SELECT type FROM events ORDER BY position")]
    finally:
        db.close()


async def test_a_shift_from_its_counted_float_to_its_counted_close(tmp_path: Path) -> None:
    async with node_with(tmp_path, fiscal_shifts=True) as node, node.till() as till:
        basket = new_id()
        await till.call("basket/add", basket_id=basket, line_id=new_id(), barcode=BAGUETTE)
        assert await refused(till, node, "sale/complete", basket_id=basket,
                             tenders=[{"method": "cash", "amount": 120}]) == "no_shift"
        await till.call("basket/clear", basket_id=basket)
        current = await till.call("shift/current")
        assert current["shift"] is None and current["required"] is True
        assert current["training"] is False
        assert current["warn_at"] < current["ends_at"]

        shift_id = new_id()
        shift = await till.call("shift/open", shift_id=shift_id, float=15000)
        assert shift["float"] == 15000 and shift["cashier"] == "alice"
        assert shift["business_day"] == current["business_day"]
        assert await till.call("shift/open", shift_id=shift_id, float=15000) == shift  # a retry
        assert await refused(till, node, "shift/open", shift_id=new_id(),
                             float=0) == "shift_open"

        cash_sale = await sell(till, [(BAGUETTE, 3)], [{"method": "cash", "amount": 500}])
        card_sale = await sell(till, [(ESPRESSO, 2)], [{"method": "card", "amount": 300}])
        assert cash_sale["shift_id"] == shift["shift_id"] == card_sale["shift_id"]
        refund = await till.call("sale/refund", refund_id=new_id(), sale_id=cash_sale["id"],
                                 reason="rassis", lines=[{"line_id": cash_sale["lines"][0]["id"],
                                                          "quantity": 1}])
        assert refund["shift_id"] == shift["shift_id"] and refund["totals"]["total"] == -120

        assert await refused(till, node, "shift/cash_move", move_id=new_id(), amount=0,
                             reason="rien") == "invalid_field"
        assert await refused(till, node, "shift/cash_move", move_id=new_id(), amount=-100,
                             reason="  ") == "invalid_field"
        move_id = new_id()
        move = await till.call("shift/cash_move", move_id=move_id, amount=-5000,
                               reason="dépôt banque")
        assert await till.call("shift/cash_move", move_id=move_id, amount=-5000,
                               reason="dépôt banque") == move  # a retry, recorded once

        x = await till.call("shift/x")
        cash = 15000 + 360 - 120 - 5000  # float, the sale net of change, the refund, the deposit
        assert x["expected"] == {"cash": cash, "card": 300}
        assert x["totals"]["sales"]["count"] == 2 and x["totals"]["refunds"]["count"] == 1
        assert x["totals"]["net"]["total"] == 360 + 300 - 120
        assert [m["amount"] for m in x["moves"]] == [-5000]

        for counted in ({"card": 300}, {"cash": 1}, {"cash": -5, "card": 300},
                        {"cash": 100, "card": 300, "bitcoin": 1}):
            assert await refused(till, node, "shift/close",
                                 counted=counted) == "invalid_field", counted
        closed = await till.call("shift/close", counted={"cash": cash - 150, "card": 300})
        assert closed["close"]["difference"] == {"cash": -150, "card": 0}
        assert closed["close"]["expected"] == {"cash": cash, "card": 300}
        assert closed["shift"]["closed_at"] is not None

        assert (await till.call("shift/current"))["shift"] is None
        assert await refused(till, node, "shift/cash_move", move_id=new_id(), amount=100,
                             reason="fond") == "no_shift"
        assert await refused(till, node, "shift/x") == "no_shift"
        with pytest.raises(CommandFailed, match="no_shift"):
            await sell(till, [(BAGUETTE, 1)], [{"method": "cash", "amount": 120}])
        # The closed shift's report stays readable by its id.
        again = await till.call("shift/x", shift_id=shift["shift_id"])
        assert again["expected"] == closed["expected"]
        await till.call("logout")
    types = journal_types(node)
    assert types.count("shift_opened") == types.count("shift_closed") == 1
    assert types.count("cash_moved") == 1 and "cashier_logged_out" in types
    assert "node_started" in types


async def test_a_shift_never_outlives_its_business_day(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    async with node_with(tmp_path, fiscal_shifts=True) as node, node.till() as till:
        shift = await till.call("shift/open", shift_id=new_id(), float=0)
        sale = await sell(till, [(BAGUETTE, 1)], [{"method": "cash", "amount": 120}])
        # The business day's end has come (the node's clock, as the sale checks it).
        monkeypatch.setattr(shifts, "utc_now", lambda: shift["ends_at"])
        with pytest.raises(CommandFailed, match="shift_ended"):
            await sell(till, [(BAGUETTE, 1)], [{"method": "cash", "amount": 120}])
        assert await refused(till, node, "shift/cash_move", move_id=new_id(), amount=100,
                             reason="fond") == "shift_ended"
        closed = await till.call("shift/close", counted={"cash": 120})
        assert closed["close"]["difference"] == {"cash": 0}
        assert sale["shift_id"] == shift["shift_id"]


async def test_with_shifts_off_a_till_sells_as_before_and_a_shift_still_counts(
    node: NodeUnderTest,
) -> None:
    async with node.till() as till:
        before = await sell(till, [(BAGUETTE, 1)], [{"method": "cash", "amount": 120}])
        assert "shift_id" not in before
        current = await till.call("shift/current")
        assert current["required"] is False and current["shift"] is None
        shift = await till.call("shift/open", shift_id=new_id(), float=1000)
        during = await sell(till, [(BAGUETTE, 1)], [{"method": "cash", "amount": 200}])
        assert during["shift_id"] == shift["shift_id"]
        x = await till.call("shift/x")
        assert x["expected"] == {"cash": 1120} and x["totals"]["sales"]["count"] == 1
    db = sqlite3.connect(node.data_dir / "edge.sqlite3")
    try:
        (body,) = db.execute("SELECT body FROM events WHERE type = 'shift_opened'").fetchone()
    finally:
        db.close()
    assert orjson.loads(body)["ends_at"] == shift["ends_at"]


async def test_a_cashier_reads_and_closes_only_her_own_tills_shift(tmp_path: Path) -> None:
    async with node_with(tmp_path, fiscal_shifts=True) as node, node.till() as mine, \
            node.till() as other:
        theirs = (await other.call("shift/open", shift_id=new_id(), float=20000))["shift_id"]
        mine_id = (await mine.call("shift/open", shift_id=new_id(), float=5000))["shift_id"]
        # What another drawer should hold is not every cashier's to read; a manager's, yes.
        assert await refused(mine, node, "shift/x", shift_id=theirs) == "no_shift"
        async with node.till(cashier="bruno", pin="567890") as manager:
            assert (await manager.call("shift/x", shift_id=theirs))["shift"]["float"] == 20000
        # Naming another till's shift closes neither it nor her own.
        assert await refused(mine, node, "shift/close", shift_id=theirs,
                             counted={"cash": 20000}) == "no_shift"
        assert (await mine.call("shift/current"))["shift"]["shift_id"] == mine_id
        assert (await other.call("shift/current"))["shift"]["shift_id"] == theirs
