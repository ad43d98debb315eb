"""The books attacked as a cashier, a store and a fraudster would (h55): what the law
(ISCA) guards against is sales hidden from the totals, so each test is one way to try.

- training mode used to sell a real basket as training (never counted), or a
  training sale refunded as real money (a real refund lowers the day's totals);
- two nodes cut apart, each closing alone, whose closures' chains fork.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from conftest import NodeUnderTest
from test_closures import Tills, apply, at, close, net, opened, own_events, reader
from test_refunds import made_elsewhere, new_id, refused, sell
from test_selling import BAGUETTE
from test_training import MANAGER, sale_bodies

from edge.fiscal import closures
from edge.fiscal.totals import totals_of


async def test_training_mode_never_hides_a_real_sale_nor_pays_out_a_pretend_one(
    node: NodeUnderTest,
) -> None:
    first, second = await node.pair(), await node.pair()
    async with node.till(first) as till:
        # A real basket rung (the customer pays cash), then a manager switches the till
        # to training: the basket is still a real sale, never sold as training.
        basket = new_id()
        await till.call("basket/add", basket_id=basket, line_id=new_id(), barcode=BAGUETTE,
                        quantity=4)
        await till.call("till/training", on=True, approval=MANAGER)
        assert await refused(till, node, "sale/complete", basket_id=basket, tenders=[
            {"method": "cash", "amount": 480}]) == "training_mismatch"
        await till.call("till/training", on=False, approval=MANAGER)
        real = await till.call("sale/complete", basket_id=basket,
                               tenders=[{"method": "cash", "amount": 480}])
        assert "training" not in real
    async with node.till(second) as other:  # a real basket rung on another till
        taken = new_id()
        await other.call("basket/add", basket_id=taken, line_id=new_id(), barcode=BAGUETTE,
                         quantity=2)
    async with node.till(first, cashier="bruno", pin="567890") as boss:
        # ... taken over by a till in training: still a real sale.
        await boss.call("till/training", on=True)
        await boss.call("basket/take_over", basket_id=taken, force=True)
        assert await refused(boss, node, "sale/complete", basket_id=taken, tenders=[
            {"method": "cash", "amount": 240}]) == "training_mismatch"
        await boss.call("basket/clear", basket_id=taken)

        # A training sale, then "refunded offline" in cash once out of training: the
        # money that leaves the drawer is no real refund lowering the day's totals.
        pretend = await sell(boss, [(BAGUETTE, 5)], [{"method": "cash", "amount": 600}])
        assert pretend["training"] is True
        await boss.call("till/training", on=False)
        line = pretend["lines"][0]
        back = await boss.call("sale/record_refund", refund=made_elsewhere(
            sale_id=pretend["id"], receipt_no=real["receipt_no"] + 1,
            lines=[{"line_id": line["id"], "product_id": line["product_id"],
                    "name": line["name"], "vat_rate": 550, "unit_price": 120,
                    "quantity": 5, "amount": 600}],
            tenders=[{"method": "cash", "amount": -600}]))
        assert back["training"] is True and "training_sale" in back["flags"]
    counted = totals_of(sale_bodies(node))
    assert (counted["sales"]["count"], counted["refunds"]["count"]) == (1, 0)
    assert counted["net"]["total"] == 480


def test_closures_of_nodes_cut_apart_count_each_sale_once_in_the_winning_chain(
    tmp_path: Path,
) -> None:
    """Two nodes cut apart close the same day alone; the loser's node then closes the
    next day too, on its own closure. Once they meet, the store's chain of winners must
    still count every sale once: the sums of the winners agree with the grand total."""
    tills = Tills()
    for hour in (9, 10):
        tills.sale(at("12-30", hour), price=100)
    tills.sale(at("12-30", 11), node="node-b", price=7000)  # only `two` holds it
    tills.sale(at("12-31", 9), price=30)

    async def run() -> None:
        one, two = await opened(tmp_path, "one"), await opened(tmp_path, "two")
        try:
            await apply(one, tills.events("node-a"))
            await apply(two, [*tills.events("node-a"), *tills.events("node-b")])
            alone = {"missing": ["the other node"], "alone": True}
            first = await close(one, "day", "2024-12-30", **alone)
            second = await close(two, "day", "2024-12-30", **alone)
            loser_node = one if second.hash < first.hash else two
            next_day = await close(loser_node, "day", "2024-12-31", **alone)
            await apply(one, [*tills.events("node-b"), *await own_events(two)])
            await apply(two, await own_events(one))
            for journal in (one, two):
                db = reader(journal)
                chain = [closures.winner(db, "day", day) for day in ("2024-12-30",
                                                                      "2024-12-31")]
                db.close()
                assert chain[1] is not None and chain[1].hash == next_day.hash
                # The winner of the 30th is the one the 31st's winner builds on.
                assert chain[0] is not None and chain[1].body["previous"] == chain[0].hash
                assert sum(net(c)[1] for c in chain) == next_day.body["grand_total"]
            month = await close(one, "month", "2024-12")
            assert net(month)[1] == month.body["grand_total"] == next_day.body["grand_total"]
            # Whichever side won, every sale once: what it had not, the next day counts.
            assert (await close(one, "day", "2025-01-01")).body["grand_total"] == 7230
        finally:
            await one.close()
            await two.close()

    asyncio.run(run())
