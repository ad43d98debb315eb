"""Training mode ("MODE ÉCOLE"): a manager switches a till; its sales and refunds say
`training`, take numbers of their own series (the real one has no gap), print the mark,
open no drawer, never touch a real sale, and never count."""

from __future__ import annotations

import sqlite3

import orjson
from conftest import NodeUnderTest
from test_refunds import new_id, refused, sell
from test_selling import BAGUETTE, ESPRESSO, wait_for_receipt

from edge.fiscal.totals import totals_of

MANAGER = {"manager": "bruno", "pin": "567890"}


def sale_bodies(node: NodeUnderTest) -> list[dict]:
    db = sqlite3.connect(node.data_dir / "edge.sqlite3")
    try:
        return [orjson.loads(body) for (body,) in db.execute("SELECT body FROM sales")]
    finally:
        db.close()


async def test_a_training_till_sells_apart_and_never_counts(node: NodeUnderTest) -> None:
    token = await node.pair()
    async with node.till(token) as till:
        real = await sell(till, [(BAGUETTE, 2)], [{"method": "cash", "amount": 240}])
        assert await refused(till, node, "till/training", on=True) == "manager_required"
        assert await till.call("till/training", on=True, approval=MANAGER) == {"training": True}
        assert (await till.call("shift/current"))["training"] is True

        # The till's own counter is not the training series': the node numbers it.
        pretend = await till.call("sale/complete", **await basket_of(till, ESPRESSO),
                                  tenders=[{"method": "cash", "amount": 200}],
                                  receipt_no=real["receipt_no"] + 1)
        assert pretend["training"] is True and pretend["receipt_no"] == 1
        assert pretend["receipt_number"].endswith("-E000001")
        second = await sell(till, [(BAGUETTE, 1)], [{"method": "card", "amount": 120}])
        assert second["receipt_number"].endswith("-E000002")
        text = await wait_for_receipt(node.data_dir, pretend["receipt_number"])
        assert "MODE ÉCOLE" in text.split(pretend["receipt_number"])[0].rsplit("Merci", 1)[-1]

        # No real card through the terminal, and never a real sale refunded in training.
        basket = await basket_of(till, BAGUETTE)
        assert await refused(till, node, "sale/complete", **basket, tenders=[
            {"method": "card", "amount": 120, "payment_id": "p1"}]) == "training_mismatch"
        assert await refused(till, node, "sale/refund", refund_id=new_id(), sale_id=real["id"],
                             reason="essai", lines=[{"line_id": real["lines"][0]["id"],
                                                     "quantity": 1}]) == "training_mismatch"
        back = await till.call("sale/refund", refund_id=new_id(), sale_id=pretend["id"],
                               reason="essai", lines=[{"line_id": pretend["lines"][0]["id"],
                                                       "quantity": 1}])
        assert back["training"] is True and back["receipt_number"].endswith("-E000003")
        found = await till.call("sale/find_for_refund",
                                receipt_number=second["receipt_number"])
        assert found["sale"]["id"] == second["id"]
        await till.call("basket/clear", basket_id=basket["basket_id"])
        assert await refused(till, node, "till/training", on=False) == "manager_required"
    async with node.till(token, cashier="bruno", pin="567890") as manager:
        assert await manager.call("till/training", on=False) == {"training": False}
    async with node.till(token) as till:
        # Back to real selling: the real series goes on where it was, with no gap.
        assert await refused(till, node, "sale/refund", refund_id=new_id(),
                             sale_id=second["id"], reason="essai",
                             lines=[{"line_id": second["lines"][0]["id"], "quantity": 1}]
                             ) == "training_mismatch"
        after = await sell(till, [(BAGUETTE, 1)], [{"method": "cash", "amount": 120}])
        assert "training" not in after
    bodies = sale_bodies(node)
    real_numbers = sorted(b["receipt_no"] for b in bodies if not b.get("training"))
    assert real_numbers == list(range(1, len(real_numbers) + 1))
    assert totals_of(bodies) == totals_of(b for b in bodies if not b.get("training"))
    assert totals_of(bodies)["sales"]["count"] == 2 and totals_of(bodies)["net"]["total"] == 360


async def basket_of(till: object, barcode: str) -> dict[str, str]:
    basket = new_id()
    await till.call("basket/add", basket_id=basket, line_id=new_id(),  # type: ignore[attr-defined]
                    barcode=barcode)
    return {"basket_id": basket}
