"""Card payments attacked: what a till, a cashier or the shop Wi-Fi can try, and what the
node must refuse so that a card is never charged (or credited) without its sale, twice, or
for more than is due.

One in-process node per test, its terminal a `FakeTerminal` (tests/fake_terminal.py);
the helpers are tests/test_card_payments.py's.
"""

from __future__ import annotations

import uuid
from pathlib import Path

from conftest import Till, node_of
from fake_terminal import FakeTerminal
from test_card_payments import basket, fails, terminal_node, until_pushed

from edge.devices.card_payments import read_payment, state_of


async def pay(till: Till, amount: int, status: str, **where: str) -> dict:  # type: ignore[type-arg]
    payment_id = str(uuid.uuid4())
    await till.call("payment/card", payment_id=payment_id, amount=amount, **where)
    return await until_pushed(till, payment_id, status)


async def test_one_card_payment_pays_a_basket_once_and_only_what_is_left_due(
    tmp_path: Path,
) -> None:
    async with FakeTerminal("partial") as terminal, \
            terminal_node(tmp_path / "data", terminal) as node, node.till() as till:
        basket_id, total = await basket(till)
        half = await pay(till, total, "approved", basket_id=basket_id)
        taken = half["authorised"]
        assert 0 < taken < total
        # The same payment named twice in one sale: the card paid once.
        card = {"method": "card", "amount": taken, "payment_id": half["payment_id"]}
        await fails("card_payment_mismatch", till, "sale/complete", basket_id=basket_id,
                    tenders=[card, card, {"method": "cash", "amount": total}])
        # A second card payment is for what is left due, not the whole basket again:
        # else the customer's card is charged past the basket, the excess in no sale.
        terminal.script = "approved"
        await fails("card_payment_too_much", till, "payment/card", basket_id=basket_id,
                    payment_id=str(uuid.uuid4()), amount=total)
        rest = await pay(till, total - taken, "approved", basket_id=basket_id)
        await fails("card_payment_too_much", till, "payment/card", basket_id=basket_id,
                    payment_id=str(uuid.uuid4()), amount=1)
        sold = await till.call("sale/complete", basket_id=basket_id, tenders=[
            card, {"method": "card", "amount": total - taken, "payment_id": rest["payment_id"]}])
        assert sum(t["amount"] for t in sold["tenders"]) == total
        assert len(terminal.requests) == 2  # the refused asks dialled nothing


async def test_a_card_refund_gives_back_at_most_what_its_sale_took_by_card(
    tmp_path: Path,
) -> None:
    async with FakeTerminal("approved") as terminal, \
            terminal_node(tmp_path / "data", terminal) as node, node.till() as till:
        basket_id, total = await basket(till)
        paid = await pay(till, total, "approved", basket_id=basket_id)
        sale = await till.call("sale/complete", basket_id=basket_id, tenders=[
            {"method": "card", "amount": total, "payment_id": paid["payment_id"]}])
        cash_basket, cash_total = await basket(till)
        cash_sale = await till.call("sale/complete", basket_id=cash_basket, tenders=[
            {"method": "cash", "amount": cash_total}])
        dialled = len(terminal.requests)

        # No sale named: any cashier could credit any card with up to a million euros.
        await fails("manager_required", till, "payment/card", refund_id=str(uuid.uuid4()),
                    payment_id=str(uuid.uuid4()), amount=99_999_999)
        # A sale paid in cash gives nothing back to a card; a card sale, what it took.
        await fails("card_payment_too_much", till, "payment/card", refund_id=str(uuid.uuid4()),
                    sale_id=cash_sale["id"], payment_id=str(uuid.uuid4()), amount=1)
        await fails("card_payment_too_much", till, "payment/card", refund_id=str(uuid.uuid4()),
                    sale_id=sale["id"], payment_id=str(uuid.uuid4()), amount=total + 1)
        await fails("unknown_sale", till, "payment/card", refund_id=str(uuid.uuid4()),
                    sale_id="nope@T01", payment_id=str(uuid.uuid4()), amount=1)
        assert len(terminal.requests) == dialled
        first = await pay(till, total, "approved", refund_id=str(uuid.uuid4()),
                          sale_id=sale["id"])
        assert first["amount"] == total
        # Given back once: a second refund of the same sale (not even recorded yet) is refused.
        await fails("card_payment_too_much", till, "payment/card", refund_id=str(uuid.uuid4()),
                    sale_id=sale["id"], payment_id=str(uuid.uuid4()), amount=1)

        # A manager may give back to a card without the sale (a refund without receipt).
        async with node.till(cashier="bruno", pin="567890") as manager:
            await pay(manager, 500, "approved", refund_id=str(uuid.uuid4()))
        assert len(terminal.requests) == dialled + 2


async def test_an_unknown_payment_is_settled_only_by_its_own_till(tmp_path: Path) -> None:
    async with FakeTerminal("garbage") as terminal, \
            terminal_node(tmp_path / "data", terminal) as node, node.till() as till, \
            node.till() as other:
        basket_id, total = await basket(till)
        lost = await pay(till, total, "unknown", basket_id=basket_id)
        await fails("card_payment_mismatch", other, "payment/card_settle",
                    payment_id=lost["payment_id"], approved=True, reference="TPE 1")
        settled = await till.call("payment/card_settle", payment_id=lost["payment_id"],
                                  approved=True, reference="TPE 1")
        assert settled["payment"]["settled"] == "approved"


async def test_healthz_does_not_tell_the_shop_wifi_where_the_terminal_is(tmp_path: Path) -> None:
    async with FakeTerminal("approved") as terminal, \
            terminal_node(tmp_path / "data", terminal) as node:
        async with node.session.get(f"{node.url}/healthz") as response:
            text = await response.text()
            [seen] = (await response.json())["terminals"]
        # A Caisse-AP terminal obeys whoever reaches its port: a refund (CD 1) sent to it
        # from the Wi-Fi credits the sender's card. /healthz answers anyone.
        assert "127.0.0.1" not in text and str(terminal.port) not in text
        assert set(seen) == {"name", "busy", "last_payment"}


async def test_a_payment_of_a_node_restored_from_a_backup_reads_unknown_and_can_be_settled(
    tmp_path: Path,
) -> None:
    """The backup was taken while the payment was on the terminal: the restored node goes
    on under a new origin and retires the old one, which nobody will ever hear finish it.
    The payment must not stay `started` for ever: the terminal's slip tells."""
    async with FakeTerminal("approved") as terminal, \
            terminal_node(tmp_path / "data", terminal) as node, node.till() as till:
        basket_id, total = await basket(till)
        journal = node_of(node).journal
        payment_id = str(uuid.uuid4())

        def strand(tx) -> None:  # type: ignore[no-untyped-def]
            # What the restored node's projections hold (its predecessor's events, replayed).
            tx.db.execute("INSERT INTO retired_origins (origin, successor, time) "
                          "VALUES ('old-origin', ?, '2026-03-01T10:00:00.000Z')",
                          (journal.origin,))
            tx.db.execute(
                "INSERT INTO card_payments (payment_id, till, cashier, basket_id, terminal, "
                "node, amount, refund, requested_at, request, request_event, status) VALUES "
                "(?, (SELECT code FROM tills LIMIT 1), 'alice', ?, 'tpe-1', 'old-origin', ?, 0, "
                "'2026-03-01T10:00:00.000Z', '{\"payment_id\": \"x\"}', 'h', 'started')",
                (payment_id, basket_id, total))

        await journal.write(strand)
        status = await till.call("payment/card_status", payment_id=payment_id)
        assert (status["payment"]["status"], status["payment"]["code"]) == (
            "unknown", "node_retired")
        settled = await till.call("payment/card_settle", payment_id=payment_id, approved=True,
                                  reference="TPE 7")
        assert settled["payment"]["settled"] == "approved"
        sold = await till.call("sale/complete", basket_id=basket_id, tenders=[
            {"method": "card", "amount": total, "payment_id": payment_id}])
        assert sold["tenders"][0]["entry"] == "slip"
        row = await read_payment(journal, payment_id)
        assert row is not None and state_of(row)["settled"] == "approved"
        assert terminal.connections == 0  # never dialled again by the restored node


async def test_resending_a_payment_again_and_again_follows_it_once(tmp_path: Path) -> None:
    async with FakeTerminal("hold") as terminal, \
            terminal_node(tmp_path / "data", terminal) as node, node.till() as till:
        basket_id, total = await basket(till)
        journal = node_of(node).journal
        before = len(journal._listeners)
        payment_id = str(uuid.uuid4())
        for _ in range(30):  # each a journal listener pushing to the till, on HEAD
            await till.call("payment/card", basket_id=basket_id, payment_id=payment_id,
                            amount=total)
        assert len(journal._listeners) == before + 1
        terminal.release()
        await until_pushed(till, payment_id, "approved")
        assert len(journal._listeners) == before
        assert len(terminal.requests) == 1
